"""The user unit `rootless generate systemd` writes: pure, from the bundle's config and the
command lines; rootless.commands.generate reads the state or the bundle and prints.

The unit's shape, and why (each line of it says so in the unit too):
- ExecStart is `rootless run --detach`, without the shim. The container's init becomes the
  service's main process (READY=1 comes with MAINPID=, rootless.notify) and, as `run --detach`
  leaves no subreaper, systemd's own child: systemd sees its exit status, so Restart=on-failure
  tells a crash from a stop, and the container's stdio is the service's (the journal). The shim
  would be a second supervisor between them (its own log, its own exit record); and a
  foreground `run` would hold the init as its child, so systemd would supervise a PID that is
  not its child and miss the exit status (systemd 252 cannot tell a crash then).
- Type=notify: `run` relays the container's READY=1, so the unit is active once the container
  says so, not when the process starts.
- Stop: ExecStop sends the config's stop signal (the image's org.opencontainers.image.stopSignal,
  else SIGTERM) to the init through the runtime and waits for the init to exit, bounded by
  TimeoutStopSec; systemd then SIGKILLs what is left (TimeoutStopFailureMode=kill,
  KillMode=mixed: the stop signal goes to the init only, as docker and podman stop do, SIGKILL to
  every process). ExecStopPost `delete --force` removes the state, the cgroup and the network
  helper, after a crash too.
- Delegate=yes: the cgroupfs driver makes the container's cgroup inside the service's, with the
  config's limits (rootless.cgroups.fs.make_room moves the runtime out of the way).

Values are quoted for systemd's command-line syntax: a word with a space, a quote or a
backslash is double-quoted with C escapes, "%" is doubled (specifiers) and "$" too (variables).
"""

import _signal  # the C module: `signal` imports enum (about 3 ms)

DEFAULT_STOP_SIGNAL = "SIGTERM"
STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal"
# Who tells systemd the service is up: the container (READY=1, relayed) or the runtime (the
# container's process has started: Type=forking, the init's PID from --pid-file).
SDNOTIFY_MODES = ("container", "runtime")
RESTART_POLICIES = ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")
# Signals systemd counts as a clean exit of the main process (systemd.service(5), SuccessExitStatus=).
_CLEAN_SIGNALS = ("SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


class Specifier(str):
    """A word with a specifier systemd is meant to expand (%t): written as it is."""


def quote(word: str) -> str:
    """One word of an Exec*= line, as systemd.service(5) reads it."""
    if isinstance(word, Specifier):
        return str(word)
    text = word.replace("%", "%%").replace("$", "$$")
    if text and not any(c in text for c in ' \t\n"\'\\;'):
        return text
    return '"' + "".join(_ESCAPES.get(c, c) for c in text) + '"'


def command(argv: list[str]) -> str:
    return " ".join(quote(word) for word in argv)


def setting(text: str) -> str:
    """A plain value (Description=): specifiers escaped, one line."""
    return text.replace("%", "%%").replace("\n", " ")


def stop_signal(config: dict, number_of) -> str:
    """The stop signal's name as systemd spells it (SIGQUIT), from the image's annotation;
    number_of(text) parses runc's spellings (9, KILL, SIGKILL) or raises."""
    text = ((config.get("annotations") or {}).get(STOP_SIGNAL_ANNOTATION) or "").strip()
    if not text:
        return DEFAULT_STOP_SIGNAL
    number = number_of(text)
    for name in dir(_signal):
        if name.startswith("SIG") and not name.startswith("SIG_") and getattr(_signal, name) == number \
                and name not in ("SIGIOT", "SIGPOLL", "SIGCLD"):  # aliases systemd does not print
            return name
    return str(number)


def unit(*, name: str, container_id: str, bundle: str, runtime: list[str], globals_: list[str], signal: str,
         stop_timeout: int, start_timeout: int | None, restart: str, sdnotify: str = "container") -> str:
    """The unit file's text."""
    base = runtime + globals_

    def line(*args: str) -> str:
        return command(base + list(args))

    if sdnotify == "container":
        ready = ("# Type=notify: the container must send READY=1 to $NOTIFY_SOCKET (rootless relays it, with\n"
                 "# MAINPID= the init); the unit is activating until then.")
        kind, pid_file = "Type=notify\nNotifyAccess=main", []
    else:
        ready = ("# Type=forking: the unit is active once the container's process has started (run --detach\n"
                 "# returns); the init's PID comes from --pid-file.")
        pid_path = Specifier(f"%t/{name.removesuffix('.service')}.pid")
        kind, pid_file = f"Type=forking\nPIDFile={pid_path}", ["--pid-file", pid_path]

    success = "" if signal in _CLEAN_SIGNALS else f"SuccessExitStatus={signal}\n"
    start = f"TimeoutStartSec={start_timeout}\n" if start_timeout is not None else ""
    return f"""\
# {name}: the OCI bundle {bundle.replace(chr(10), ' ')} as a service (`rootless generate systemd`).
#
# ExecStart is `rootless run --detach`, without the shim: the container's init becomes the main
# process and systemd's own child, so systemd sees its exit status (Restart=) and its output
# goes to the journal; a shim would be a second supervisor between them, with a log of its own.
{ready}
# Stop: the init gets {signal} through the runtime and {stop_timeout} s to exit; then SIGKILL for
# every process left. ExecStopPost deletes the container's state, after a crash too.
# Delegate=yes: the container's cgroup (cgroupfs driver) is made inside the service's, with
# the limits of its config.

[Unit]
Description=rootless container {setting(container_id)}

[Service]
{kind}
ExecStart={line("--cgroup-manager", "cgroupfs", "run", "--detach", *pid_file, "--bundle", bundle, container_id)}
ExecStop=-{line("kill", container_id, signal)}
ExecStop=-/usr/bin/tail --pid=${{MAINPID}} -s 0.2 -f /dev/null
ExecStopPost=-{line("delete", "--force", container_id)}
KillMode=mixed
KillSignal={signal}
{success}TimeoutStopSec={stop_timeout}
TimeoutStopFailureMode=kill
{start}Restart={restart}
Delegate=yes

[Install]
WantedBy=default.target
"""
