"""`rlx run`'s flags, written once: typer builds the command (help, completion, its errors)
from this table, and the fast path parses a plain `rlx run` with it without loading typer.

Why two parsers for one table: typer 0.29 builds a pydantic TypeAdapter for every non-bool
parameter on every call (pydantic's import alone is about 150 ms here), which would cost
`rlx run` more than the whole container. The fast path handles what a person or a script
types; anything it does not understand (help, a malformed flag) goes to typer, which then
says what is wrong in its own words. Pure: unit-tested.
"""

# (flags, dest, kind, help); kind: flag (bool), value (str), multi (list of str), int, float
FLAGS = (
    (("--name",), "name", "value", "The container's name (default: a random adjective_noun)."),
    (("--detach", "-d"), "detach", "flag", "Run in the background; print the ID."),
    (("--rm",), "rm", "flag", "Remove the container when it exits."),
    (("--interactive", "-i"), "interactive", "flag", "Keep stdin open."),
    (("--tty", "-t"), "tty", "flag", "Give the container a terminal."),
    (("--env", "-e"), "env", "multi", "KEY=VALUE, or KEY for the host's value."),
    (("--env-file",), "env_file", "multi", "A file of KEY=VALUE lines."),
    (("--workdir", "-w"), "workdir", "value", "The working directory inside."),
    (("--user", "-u"), "user", "value", "USER[:GROUP], names or IDs of the image."),
    (("--volume", "-v"), "volume", "multi", "SRC:DST[:ro]; SRC a host path or a volume name."),
    (("--tmpfs",), "tmpfs", "multi", "DST[:OPTIONS]: a tmpfs at DST."),
    (("--publish", "-p"), "publish", "multi", "[HOSTIP:]HOSTPORT:PORT[/tcp|udp] (host IP 127.0.0.1 unless given)."),
    (("--network", "--net"), "network", "value", "none, pasta, slirp4netns or host (default: pasta, else slirp4netns)."),
    (("--dns",), "dns", "multi", "A name server for /etc/resolv.conf."),
    (("--hostname",), "hostname", "value", "The hostname (default: the short ID)."),
    (("--memory", "-m"), "memory", "value", "A memory limit: 512m, 1g."),
    (("--cpus",), "cpus", "float", "CPUs the container may use: 1.5."),
    (("--pids-limit",), "pids_limit", "int", "At most this many processes."),
    (("--cap-add",), "cap_add", "multi", "A capability to add (NET_RAW, ALL)."),
    (("--cap-drop",), "cap_drop", "multi", "A capability to drop (CHOWN, ALL)."),
    (("--read-only",), "read_only", "flag", "A read-only root (tmpfs on /tmp, /var/tmp and /run)."),
    (("--userns",), "userns", "value", "keep-id: your own UID and GID inside (an image's first run copies its layers)."),
    (("--init",), "init", "flag", "A small init as PID 1 that reaps zombies (catatonit or tini)."),
    (("--entrypoint",), "entrypoint", "value", "Instead of the image's Entrypoint (its Cmd is dropped)."),
    (("--security-opt",), "security_opt", "multi", "seccomp=unconfined or seccomp=FILE."),
    (("--quiet", "-q"), "quiet", "flag", "No pull progress, even on a terminal."),
)
_BY_FLAG = {flag: (dest, kind) for flags, dest, kind, _ in FLAGS for flag in flags}


class NotForUs(Exception):
    """The fast path does not handle this command line: typer's parser takes it."""


def defaults() -> dict:
    values = {dest: ([] if kind == "multi" else False if kind == "flag" else None) for _, dest, kind, _ in FLAGS}
    values.update(source=None, command=[])
    return values


def parse(argv: list[str]) -> dict:
    """The arguments after `run`: flags up to SOURCE, the rest is the command (podman's rule:
    nothing after SOURCE is rlx's)."""
    values = defaults()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
            if name not in _BY_FLAG:
                raise NotForUs(arg)
            dest, kind = _BY_FLAG[name]
            if kind == "flag":
                if has_value:
                    raise NotForUs(arg)
                values[dest] = True
            else:
                value, i = _value(argv, i, value if has_value else None)
                _store(values, dest, kind, value)
            i += 1
            continue
        # short flags, bundled (-it) or with a value joined (-eA=1) or next
        j = 1
        while j < len(arg):
            flag = "-" + arg[j]
            if flag not in _BY_FLAG:
                raise NotForUs(arg)
            dest, kind = _BY_FLAG[flag]
            if kind == "flag":
                values[dest] = True
                j += 1
                continue
            value, i = _value(argv, i, arg[j + 1:] or None)
            _store(values, dest, kind, value)
            break
        i += 1
    if i >= len(argv):
        raise NotForUs("no SOURCE")
    values["source"], values["command"] = argv[i], argv[i + 1:]
    return values


def _value(argv: list[str], i: int, inline: str | None) -> tuple[str, int]:
    """A flag's value: the one joined to it (--name=web, -eA=1), else the next argument."""
    if inline is not None:
        return inline, i
    if i + 1 >= len(argv):
        raise NotForUs(argv[i])
    return argv[i + 1], i + 1


def _store(values: dict, dest: str, kind: str, value: str) -> None:
    if kind == "multi":
        values[dest].append(value)
    elif kind == "int":
        try:
            values[dest] = int(value)
        except ValueError:
            raise NotForUs(value) from None
    elif kind == "float":
        try:
            values[dest] = float(value)
        except ValueError:
            raise NotForUs(value) from None
    else:
        values[dest] = value


def split_globals(argv: list[str], env) -> tuple[dict, list[str]] | None:
    """rlx's global options (--store, --debug) before the verb; None when there is anything
    else before it (--help, an unknown option): typer's job."""
    found = {"store": env.get("RLX_STORE") or None, "debug": False}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, has_value, value = argv[i].partition("=")
        if name == "--debug" and not has_value:
            found["debug"] = True
        elif name == "--store":
            if not has_value:
                i += 1
                if i >= len(argv):
                    return None
                value = argv[i]
            found["store"] = value
        else:
            return None
        i += 1
    return found, argv[i:]
