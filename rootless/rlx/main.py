"""`rlx`, the developer command line: the typer app, its global options and the error line.

Each verb group is a module that parses and prints only (images.py: pull, load, images, rmi,
prune; bundle.py; run.py; containers.py: ps, logs, stop, kill, rm, exec, inspect, port, wait, attach);
the work is in rootless/images, rootless/rlx/control.py and the runtime. Errors a user can act
on (RootlessError) become one line on stderr and exit status 1; anything else is a bug, still
one line (the traceback only with --debug: rootless/rlx/entry.py). Shell completion is typer's
(`rlx --install-completion`, `--show-completion`), completing names from rootless/rlx/complete.py.
"""

import os
import sys

# typer's help and usage errors go through rich, which keeps bold and dim under NO_COLOR
# (no-color.org asks only for no colour): with NO_COLOR, or no terminal, help is plain text.
_PLAIN = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
if _PLAIN and "TYPER_USE_RICH" not in os.environ:
    os.environ["TYPER_USE_RICH"] = "0"
    import typer
    del os.environ["TYPER_USE_RICH"]  # read once, at import; the containers we start never see it
else:
    import typer

from rootless.errors import UsageError  # noqa: E402
from rootless.rlx import bundle, containers, context, images, run  # noqa: E402

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  help="rootless's developer command line: containers, images and bundles.",
                  epilog="Run `rlx COMMAND --help` for a command's options and examples.")


@app.callback()
def main_options(
        store: str = typer.Option(None, "--store", envvar="RLX_STORE",
                                  help="The image store (default $XDG_DATA_HOME/rootless; root: /var/lib/rootless)."),
        debug: bool = typer.Option(False, "--debug", help="Say more on stderr: ID maps, notes, choices made, tracebacks."),
) -> None:
    context.configure(store, debug)


images.register(app)
bundle.register(app)
run.register(app)
containers.register(app)


def main() -> None:
    from rootless.rlx.entry import guarded
    guarded(_app, debug="--debug" in sys.argv[1:])


def _app() -> None:
    """The app, with click's usage errors as one line too (click's own are a usage block and
    the error, or a rich panel): what was wrong and where the options are."""
    try:
        status = app(standalone_mode=False)
    except typer.Abort:
        raise UsageError("aborted") from None
    except typer.TyperException as err:  # click's UsageError and its kin
        if type(err).__name__ == "NoArgsIsHelpError":  # bare `rlx` or a group: the help
            print(err.format_message().rstrip("\n"))
            sys.exit(0)
        ctx = getattr(err, "ctx", None)
        line = UsageError(f"{err.format_message()} ({ctx.command_path if ctx else 'rlx'} --help shows how)")
        line.exit_code = 2  # click's status for a usage error
        raise line from None
    if isinstance(status, int):  # typer.Exit(n) from a verb, or 0 after --help
        sys.exit(status)
