"""The CLI process: parse argv, dispatch to rootless.commands.<verb>, turn errors into one line.

Only the verb's own module is imported, so `state` or `kill` pay for nothing they do not use.
"""

import sys

from rootless import args as a
from rootless.commands import flags
from rootless.errors import RootlessError, UsageError

_HELP = a.Option(("h", "help"), "help", help="show this help")
COMMANDS = {c.name: c for c in (
    flags.CREATE,
    a.Command("start", "Start the process of a created container.", (), ("id",)),
    flags.RUN,
    a.Command("exec", "Run a process in a running container; wait for it unless --detach.", (
        a.Option(("p", "process"), "process", True, help="an OCI process JSON file (instead of a command)"),
        a.Option(("cwd",), "cwd", True, help="working directory of the process"),
        a.Option(("e", "env"), "env", True, repeat=True, help="KEY=VALUE, added to the container's environment"),
        a.Option(("u", "user"), "user", True, help="UID[:GID] of the process"),
        a.Option(("g", "additional-gids"), "additional_gids", True, repeat=True, help="an additional group ID"),
        a.Option(("c", "cap"), "cap", True, repeat=True, help="a capability to add (CAP_NET_RAW or net_raw)"),
        a.Option(("no-new-privs",), "no_new_privs", help="set no_new_privs for the process"),
        a.Option(("t", "tty"), "tty", help="give the process a terminal"),
        a.Option(("console-socket",), "console_socket", True, help="AF_UNIX socket that receives the pty master"),
        a.Option(("d", "detach"), "detach", help="do not wait for the process"),
        a.Option(("pid-file",), "pid_file", True, help="write the process's host PID to this file"),
        a.Option(("preserve-fds",), "preserve_fds", True, 0, a.non_negative_int, help="pass N more fds (3..3+N-1)"),
        a.Option(("ignore-paused",), "ignore_paused", help="exec even in a paused container"),
        a.Option(("apparmor",), "apparmor", True, help="AppArmor profile of the process"),
        a.Option(("process-label",), "process_label", True, help="SELinux label of the process"),
        a.Option(("cgroup",), "cgroup", True, repeat=True,
                 help="[CONTROLLER:]PATH: a cgroup below the container's to run the process in"),
    ), ("id",), rest="command"),
    a.Command("state", "Print the OCI state of a container as JSON.", (), ("id",)),
    a.Command("list", "List containers.", (
        a.Option(("f", "format"), "format", True, "table", help="table or json"),
        a.Option(("q", "quiet"), "quiet", help="print only the container IDs"),
    ), aliases=("ls",)),
    a.Command("kill", "Send a signal (default TERM) to a container's init.", (
        a.Option(("a", "all"), "all", help="signal every process of the container"),
    ), ("id",), ("signal",)),
    a.Command("delete", "Delete a container and its state.", (
        a.Option(("f", "force"), "force", help="kill the container first if it runs"),
    ), ("id",), aliases=("rm",)),
    a.Command("logs", "Print the output of a shim-managed container.", (
        a.Option(("f", "follow"), "follow", help="keep printing until the container exits"),
    ), ("id",)),
    a.Command("attach", "Attach to a shim-managed container: its output, and your input.", (
        a.Option(("no-stdin",), "no_stdin", help="do not pass input on"),
    ), ("id",)),
    a.Command("wait", "Wait for a shim-managed container to exit; print its exit code.", (), ("id",)),
    a.Command("ps", "List the host PIDs of a container's processes (runc's ps).", (
        a.Option(("f", "format"), "format", True, "table", help="table (through ps(1), with PS_ARGS) or json"),
    ), ("id",), rest="ps_args"),
    a.Command("spec", "Write a config.json template (runc's, with `sh` as the process).", (
        flags.BUNDLE,
        a.Option(("rootless",), "rootless", help="a template for an unprivileged user"),
    )),
    a.Command("update", "Change the resource limits of a running container.", (
        a.Option(("r", "resources"), "resources", True,
                 help="an OCI LinuxResources JSON file, or - for stdin (other flags are then ignored)"),
        a.Option(("memory",), "memory", True, help="memory limit in bytes (64m, 1g; -1: none)"),
        a.Option(("memory-swap",), "memory_swap", True, help="memory + swap limit (-1: unlimited swap)"),
        a.Option(("memory-reservation",), "memory_reservation", True, help="memory reservation (memory.low)"),
        a.Option(("kernel-memory",), "kernel_memory", True, help="accepted for runc compatibility (no cgroup v2 file)"),
        a.Option(("kernel-memory-tcp",), "kernel_memory_tcp", True,
                 help="accepted for runc compatibility (no cgroup v2 file)"),
        a.Option(("cpu-share", "cpu-shares"), "cpu_share", True, help="CPU shares (cpu.weight as crun converts)"),
        a.Option(("cpu-quota",), "cpu_quota", True, help="CPU CFS quota in microseconds (-1: none)"),
        a.Option(("cpu-period",), "cpu_period", True, help="CPU CFS period in microseconds"),
        a.Option(("cpu-rt-period",), "cpu_rt_period", True, help="accepted for runc compatibility (no cgroup v2 file)"),
        a.Option(("cpu-rt-runtime",), "cpu_rt_runtime", True,
                 help="accepted for runc compatibility (no cgroup v2 file)"),
        a.Option(("cpu-idle",), "cpu_idle", True, help="1: SCHED_IDLE for the cgroup (cpu.idle)"),
        a.Option(("cpuset-cpus",), "cpuset_cpus", True, help="CPUs to use (0-3,8)"),
        a.Option(("cpuset-mems",), "cpuset_mems", True, help="memory nodes to use"),
        a.Option(("pids-limit",), "pids_limit", True, help="maximum number of tasks (-1: none)"),
        a.Option(("blkio-weight",), "blkio_weight", True, help="block I/O weight, 10 to 1000"),
        a.Option(("l3-cache-schema",), "l3_cache_schema", True, help="Intel RDT: not supported"),
        a.Option(("mem-bw-schema",), "mem_bw_schema", True, help="Intel RDT: not supported"),
    ), ("id",)),
    a.Command("pause", "Freeze every process of a container (its cgroup v2's cgroup.freeze).", (), ("id",)),
    a.Command("resume", "Thaw a paused container.", (), ("id",)),
    a.Command("events", "Print a container's cgroup statistics and OOM events as JSON lines.", (
        a.Option(("interval",), "interval", True, "5s", help="how often to print statistics (default 5s)"),
        a.Option(("stats",), "stats", help="print the statistics once and exit"),
    ), ("id",)),
    a.Command("generate", "Write a systemd user unit that runs a bundle: generate systemd ID|--bundle DIR.", (
        a.Option(("b", "bundle"), "bundle", True, help="the bundle the unit runs (instead of a container ID)"),
        a.Option(("name",), "name", True, help="the container ID the unit runs (default: ID, or the bundle folder's name)"),
        a.Option(("f", "files"), "files", help="write container-NAME.service in the current directory; print its path"),
        a.Option(("t", "time", "stop-timeout"), "stop_timeout", True, "10",
                 help="seconds the container has to stop before SIGKILL (default 10)"),
        a.Option(("start-timeout",), "start_timeout", True, help="seconds to wait for READY=1 (default: systemd's)"),
        a.Option(("restart-policy",), "restart_policy", True, "on-failure", help="Restart= of the unit (default on-failure)"),
        a.Option(("sdnotify",), "sdnotify", True, "container",
                 help="who says the unit is up: container (its READY=1, default) or runtime (once started)"),
    ), ("kind",), ("id",)),
    a.Command("features", "Print what this runtime supports, as JSON."),
)}
ALIASES = {alias: c.name for c in COMMANDS.values() for alias in c.aliases}

GLOBAL_OPTIONS = (
    a.Option(("root",), "root", True, help="state directory (default: $XDG_RUNTIME_DIR/rootless, or /run/rootless as root)"),
    a.Option(("log",), "log", True, help="append errors and warnings to this file"),
    a.Option(("log-format",), "log_format", True, "text", help="text or json"),
    a.Option(("log-level",), "log_level", True, help="accepted for crun compatibility"),
    a.Option(("debug",), "debug", help="print what the runtime plans to do on stderr"),
    a.Option(("systemd-cgroup",), "systemd_cgroup", help="a systemd scope per container (cgroupsPath slice:prefix:name)"),
    a.Option(("cgroup-manager",), "cgroup_manager", True, help="cgroupfs (default), systemd or disabled"),
    a.Option(("cgroups-required",), "cgroups_required",
             help="refuse a container whose limits cannot be applied (annotation rootless.cgroups=required)"),
    a.Option(("rootless",), "rootless", True, "auto", help="true, false or auto"),
    a.Option(("criu",), "criu", True, help="accepted for runc compatibility; unused"),
    a.Option(("v", "version"), "version", help="print the version"),
    _HELP,
)


def _global_help() -> str:
    lines = ["usage: rootless [global options] COMMAND [options] [args]", "",
             "A rootless-first OCI container runtime with runc's command line.", "", "commands:"]
    lines += [f"  {c.name:<10}{c.summary}" for c in COMMANDS.values()]
    lines += ["", "global options:"]
    lines += [f"  {o.display() + (' VALUE' if o.takes_value else ''):<24}{o.help}" for o in GLOBAL_OPTIONS]
    return "\n".join(lines)


def _version() -> str:
    from rootless import OCI_VERSION, __version__
    return f"rootless version {__version__}\nspec: {OCI_VERSION}"


def _check_choice(value, choices: tuple[str, ...], flag: str) -> None:
    if value is not None and value not in choices:
        raise UsageError(f"invalid value {value!r} for --{flag}: expected one of {', '.join(choices)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    log_target: dict = {"log": None, "log_format": "text"}
    try:
        values, rest = a.parse_options(GLOBAL_OPTIONS, argv, stop_at_positional=True, context="")
        log_target = {"log": values["log"], "log_format": values["log_format"]}
        _check_choice(values["log_format"], ("text", "json"), "log-format")
        _check_choice(values["cgroup_manager"], ("cgroupfs", "systemd", "disabled"), "cgroup-manager")
        _check_choice(values["rootless"], ("true", "false", "auto"), "rootless")
        if values["version"]:
            print(_version())
            return 0
        if not rest:
            if values["help"]:
                print(_global_help())
                return 0
            raise UsageError("no command given; see rootless --help")
        verb, verb_argv = ALIASES.get(rest[0], rest[0]), rest[1:]
        command = COMMANDS.get(verb)
        if command is None:
            # runc's (urfave/cli's) words and status: scripts tell a runtime without the verb by them.
            err = UsageError(f"No help topic for '{rest[0]}': see rootless --help")
            err.exit_code = 3
            raise err
        if values["help"]:
            print(a.help_text(command))
            return 0
        try:
            parsed = a.parse_command(command, verb_argv)
        except UsageError:
            # -h/--help are no flags of the verbs: parsing fails at them, unless they belong to
            # the command line that exec runs.
            if "-h" in verb_argv or "--help" in verb_argv:
                print(a.help_text(command))
                return 0
            raise
        from rootless.context import Context, default_root
        from rootless.paths import check_state_root
        root = values["root"] or default_root()
        ctx = Context(root=root if verb in ("spec", "features") else check_state_root(root), log=values["log"], log_format=values["log_format"],
                      debug=values["debug"], systemd_cgroup=values["systemd_cgroup"],
                      rootless=values["rootless"], cgroup_manager=values["cgroup_manager"],
                      cgroups_required=values["cgroups_required"])
        module = __import__(f"rootless.commands.{verb}", fromlist=["run"])
        return module.run(ctx, parsed)
    except (Exception, KeyboardInterrupt) as err:
        return failed(err, argv, log_target)


def failed(err: BaseException, argv: list[str], log_target: dict) -> int:
    """A failure as one line (on stderr, or in the --log file) and its exit code; also for the
    calls rootless.fastpath runs without this module's parser."""
    if isinstance(err, KeyboardInterrupt):
        return 130
    from rootless import log
    if isinstance(err, RootlessError):
        log.emit("error", err.message, **log_target)
        return err.exit_code
    if isinstance(err, RecursionError):  # JSON or a request nested deeper than any real one
        log.emit("error", "input nested too deeply: flatten config.json or the file given", **log_target)
        return 1
    # a bug: still one line, with the traceback only under --debug
    if "--debug" in argv:
        import traceback
        traceback.print_exception(err)
    log.emit("error", f"internal error: {type(err).__name__}: {err}", **log_target)
    return 1
