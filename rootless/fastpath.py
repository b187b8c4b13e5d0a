"""The `rootless` command's entry: the short calls podman, conmon and containerd make for every
container (`state ID`, `start ID`, `kill [-a] ID [SIGNAL]`, `delete [-f] ID`, `list [-q]`, after at
most --root, --log, --log-format and --systemd-cgroup) skip the CLI's tables, and so do `create`
and `run`, parsed with their own Commands (rootless.commands.flags); everything else goes to
rootless.cli.

Only the recognising is this module's own, and it is strict: any other flag, spelling or
count of arguments is left to the CLI, which parses it (or says what is wrong). A recognised call
runs as the CLI would run it: the same rootless.commands.<verb>.run, given the Context and the
parsed arguments the CLI would build (tests/unit/test_cli_args.py compares the two on many
command lines), and a failure is reported by rootless.cli.failed. The CLI module with its option
tables and help texts is a third of what `state` would import (about 0.5 ms of each call).
"""

import os
import sys

_GLOBAL_VALUES = {"--root": "root", "--log": "log", "--log-format": "log_format"}
# Per verb: its boolean flags by spelling (dest), the options' defaults, and how many
# positionals it takes (the names in order, the last ones optional as in rootless.cli).
_VERBS = {
    "state": ({}, {}, ("id",), 1),
    "start": ({}, {}, ("id",), 1),
    "kill": ({"-a": "all", "--all": "all"}, {"all": None}, ("id", "signal"), 1),
    "delete": ({"-f": "force", "--force": "force"}, {"force": None}, ("id",), 1),
    "list": ({"-q": "quiet", "--quiet": "quiet"}, {"format": "table", "quiet": None}, (), 0),
}
# Parsed with their own Commands (rootless.commands.flags), not by the table above.
_SETUP_VERBS = ("create", "run")


def recognise(argv: list[str]):
    """(verb, global values, options, args) of a short call, or None for the CLI to parse."""
    values = {"root": None, "log": None, "log_format": "text", "systemd_cgroup": None}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, inline = argv[i].partition("=")
        if name == "--systemd-cgroup" and not eq:
            values["systemd_cgroup"] = True
        elif name in _GLOBAL_VALUES:
            if not eq:
                if i + 1 == len(argv):
                    return None
                i += 1
                inline = argv[i]
            values[_GLOBAL_VALUES[name]] = inline
        else:
            return None
        i += 1
    if i == len(argv) or values["log_format"] not in ("text", "json"):
        return None
    if argv[i] in _SETUP_VERBS:
        return _recognise_setup(argv[i], argv[i + 1:], values)
    if argv[i] not in _VERBS:
        return None
    flags, options, names, required = _VERBS[argv[i]]
    options = dict(options)
    positionals = []
    for arg in argv[i + 1:]:
        if arg in flags:
            options[flags[arg]] = True
        elif arg.startswith("-"):
            return None
        else:
            positionals.append(arg)
    if not required <= len(positionals) <= len(names):
        return None
    args = dict.fromkeys(names)
    args.update(zip(names, positionals))
    return argv[i], values, options, args


def _recognise_setup(verb: str, argv: list[str], values: dict):
    """create and run, parsed by the CLI's own parser and Command (rootless.commands.flags);
    whatever it refuses, -h included, is the CLI's to report."""
    from rootless import args
    from rootless.commands import flags
    from rootless.errors import UsageError
    try:
        parsed = args.parse_command(flags.SETUP_COMMANDS[verb], argv)
    except UsageError:
        return None
    return verb, values, parsed.options, parsed.args


def main(argv: list[str]) -> int:
    if "ROOTLESS_NAMESPACE_STAGE" in os.environ or "ROOTLESS_STAGE" in os.environ:
        # The compiled front started create's namespace stage beside this process
        # (rootless/create/stagefork.py): this is the stage, or the CLI process that will use it.
        from rootless.create import stagefork
        stagefork.from_environment(os.environ)
    call = recognise(argv)
    if call is None:
        from rootless.cli import main
        return main(argv)
    verb, values, options, args = call
    log_target = {"log": values["log"], "log_format": values["log_format"]}
    try:
        from rootless.args import Parsed
        from rootless.context import Context, default_root
        from rootless.paths import check_state_root
        parsed = Parsed(options)
        parsed.args = args
        ctx = Context(root=check_state_root(values["root"] or default_root()), log=values["log"],
                      log_format=values["log_format"], systemd_cgroup=values["systemd_cgroup"])
        module = __import__(f"rootless.commands.{verb}", fromlist=["run"])
        return module.run(ctx, parsed)
    except (Exception, KeyboardInterrupt) as err:
        from rootless.cli import failed
        return failed(err, argv, log_target)


def main_and_exit(main=main) -> None:
    """Run main (this module's, or rootless.cli's alone) and leave without interpreter
    finalization (module teardown and garbage collection cost 1 to 2 ms per call, and podman
    calls the runtime several times per container). Output is flushed first; nothing else needs
    an orderly shutdown."""
    exit_without_teardown(main(sys.argv[1:]))


def exit_without_teardown(code: int) -> None:
    """Flush stdout and stderr, then leave with code, skipping the interpreter's teardown (and
    ending a namespace stage the front started, when nothing took it: a refused create)."""
    stagefork = sys.modules.get("rootless.create.stagefork")
    if stagefork is not None:
        stagefork.discard_unused()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
