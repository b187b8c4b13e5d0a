"""`rlx`'s entry point: a plain `rlx [--store DIR] [--debug] run ...` takes the fast path
(rootless.rlx.runflags, no typer: see there why); everything else is the typer app
(rootless.rlx.main). Both turn errors into one line: `rlx: what failed and what to do`."""

import os
import sys


def main() -> None:
    argv = sys.argv[1:]
    from rootless.rlx import runflags
    split = runflags.split_globals(argv, os.environ)
    if split is not None and split[1][:1] == ["run"]:
        try:
            values = runflags.parse(split[1][1:])
        except runflags.NotForUs:
            pass
        else:
            from rootless.rlx import context, run
            context.configure(split[0]["store"], split[0]["debug"])
            guarded(run.execute, values, debug=split[0]["debug"])
            return
    import gc
    gc.enable()  # the script disabled it for the fast path; pulls and loads run long
    from rootless.rlx import main as typer_main
    typer_main.main()


def guarded(function, *args, debug: bool) -> None:
    from rootless.errors import RootlessError
    try:
        function(*args)
    except RootlessError as err:
        print(f"rlx: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("rlx: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # `rlx ps | head`: the reader has what it wanted; nothing more to say, not even at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as err:  # a bug: still one line, the traceback under --debug only
        if debug:
            import traceback
            traceback.print_exc()
        print(f"rlx: internal error: {type(err).__name__}: {err} (run with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)
