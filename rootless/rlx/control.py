"""What rlx's container verbs do, without typer: find a container, read its state from the
runtime (rootless.state under records.state_root()), stop, kill, remove, and the views ps,
inspect and port print. Every verb module prints what these return; tests call them directly.

An rlx container is two things (rootless/rlx/records.py): its record in the store (what rlx
decided) and the runtime's state directory (what runs, its shim, exit.json). The record lives
until `rm`; the runtime state until `rm` too, unless the container ran with --rm.
"""

import json
import os
import time

from rootless import container, state
from rootless.errors import RootlessError
from rootless.rlx import listing, records

STOP_TIMEOUT = 10  # podman's default for stop -t


class Ctr:
    """One container as the verbs see it: its record, and the runtime's view when there is one."""

    def __init__(self, record: dict, root: str):
        self.record, self.id, self.name = record, record["id"], record["name"]
        self.cdir = state.ContainerDir(root, record["id"])

    def runtime_state(self) -> dict | None:
        """The runtime's state.json, or None when the runtime holds nothing of it (never
        created, removed by --rm, or a reboot cleared the state root)."""
        try:
            with self.cdir:
                return self.cdir.load()
        except RootlessError:
            return None

    def exit_record(self) -> dict | None:
        try:
            with open(os.path.join(self.cdir.path, "exit.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def status(self) -> dict:
        """podman's view: {"state": created|running|paused|exited, "pid", "exit_code",
        "started", "exited"} (times as seconds since the epoch, 0 when unknown)."""
        st = self.runtime_state()
        created = listing.parse_time(self.record.get("created", ""))
        if st is None:  # a foreground run that has ended (its exit is in the record), or a reboot
            return {"state": "exited", "pid": 0, "exit_code": self.record.get("exit_code"),
                    "started": created, "exited": listing.parse_time(self.record.get("finished", ""))}
        current = state.status(self.cdir, st)
        started = listing.parse_time(st.get("created", "")) or created
        if current != "stopped":
            return {"state": current, "pid": st["pid"], "exit_code": None, "started": started, "exited": 0.0}
        exited = self.exit_record() or {}
        return {"state": "exited", "pid": 0, "exit_code": exited.get("exit_code"), "started": started,
                "exited": listing.parse_time(exited.get("exited_at", ""))}

    def running_state(self, verb: str) -> dict:
        """The runtime state of a container that runs, or one line saying it does not."""
        st = self.runtime_state()
        if st is None or state.status(self.cdir, st) == "stopped":
            raise RootlessError(f"{verb}: container {self.name} is not running (rlx ps -a shows it; "
                                f"rlx rm {self.name} removes it)")
        return st


def find(store_root: str, ref: str) -> Ctr:
    return Ctr(records.find(store_root, ref), records.state_root())


def every(store_root: str) -> list[Ctr]:
    root = records.state_root()
    return [Ctr(record, root) for record in records.all(store_root)]


def signal_of(text: str) -> int:
    """SIGTERM, TERM, term, 15: the runtime's spellings."""
    return container.signal_number(text)


def kill(ctr: Ctr, signum: int) -> None:
    st = ctr.running_state("kill")
    with ctr.cdir:
        container.kill(ctr.cdir, st, signum)


def stop(ctr: Ctr, timeout: float = STOP_TIMEOUT) -> bool:
    """The record's stop signal, then SIGKILL to all of it after `timeout` seconds (podman's
    stop). Returns False when it had already stopped. Waits for the shim's exit record, so
    `wait`, `ps` and `inspect` show the exit code once this returns."""
    st = ctr.runtime_state()
    if st is None or state.status(ctr.cdir, st) == "stopped":
        return False
    signum = signal_of(ctr.record.get("stop_signal") or "SIGTERM")
    with ctr.cdir:
        if state.status(ctr.cdir, st) == "created":
            signum = signal_of("KILL")  # its init waits for start: nothing inside has a handler yet
        container.kill(ctr.cdir, st, signum)
    if not container.wait_stopped(st, timeout):
        with ctr.cdir:
            container.kill(ctr.cdir, st, signal_of("KILL"), every=True)
        if not container.wait_stopped(st, 10):
            raise RootlessError(f"stop: container {ctr.name} (pid {st['pid']}) did not die after SIGKILL")
    _wait_for_exit_record(ctr, st)
    return True


def _wait_for_exit_record(ctr: Ctr, st: dict, timeout: float = 5.0) -> None:
    shim = st.get("shim")
    if not shim:
        return
    from rootless.linux import procfs
    deadline = time.monotonic() + timeout
    while ctr.exit_record() is None and procfs.is_alive(shim["pid"], shim.get("pid_start")):
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def remove(ctr: Ctr, store_root: str, force: bool, debug: bool = False) -> None:
    """The runtime's container (its processes with -f, network helper, cgroup, shim, state
    directory), then the record and everything in its directory: the bundle and its root, the
    log. Nothing is left behind."""
    st = ctr.runtime_state()
    if st is not None:
        current = state.status(ctr.cdir, st)
        if current in ("running", "paused") and not force:
            raise RootlessError(f"rm: container {ctr.name} is {current}: stop it first (rlx stop {ctr.name}) "
                                f"or remove it anyway with rm -f")
    from rootless.rlx import launch
    launch.delete(launch.context(debug), ctr.id)
    records.remove(store_root, ctr.id)


def wait(ctr: Ctr) -> int:
    """The container's exit code, once it has exited (through the shim's exit record)."""
    status = ctr.status()
    if status["state"] == "exited" and status["exit_code"] is not None:
        return status["exit_code"]
    if ctr.runtime_state() is None:
        raise RootlessError(f"wait: container {ctr.name} has no exit code: it never ran, or the machine "
                            f"restarted while it ran (rlx rm {ctr.name} removes it)")
    from rootless.shim import client
    try:
        return client.ShimmedContainer(ctr.cdir.root, ctr.id).wait_exit()["exit_code"]
    except RootlessError as err:
        raise RootlessError(f"wait: container {ctr.name}: {err}") from None


def ports(ctr: Ctr) -> list[dict]:
    return list(ctr.record.get("ports") or [])


def ps_row(ctr: Ctr, now: float) -> dict:
    """One container for `ps --format json`, with podman's keys."""
    status = ctr.status()
    record = ctr.record
    return {
        "Id": ctr.id, "Names": [ctr.name], "Image": record.get("image", ""), "ImageID": record.get("image_id") or "",
        "Command": list(record.get("command") or []), "Created": int(listing.parse_time(record.get("created", ""))),
        "CreatedAt": record.get("created", ""), "State": status["state"],
        "Status": listing.status_text(status["state"], now, status["started"], status["exit_code"], status["exited"]),
        "Pid": status["pid"], "ExitCode": status["exit_code"] if status["exit_code"] is not None else 0,
        "Exited": status["state"] == "exited", "StartedAt": int(status["started"]),
        "ExitedAt": int(status["exited"]), "Ports": ports(ctr), "AutoRemove": bool(record.get("auto_remove")),
        "Network": record.get("network", ""),
    }


def inspect(ctr: Ctr, store_root: str) -> dict:
    """podman inspect's main keys, from the record and the runtime's state."""
    status = ctr.status()
    st = ctr.runtime_state() or {}
    record = ctr.record
    return {
        "Id": ctr.id, "Name": ctr.name, "Created": record.get("created", ""),
        "Path": (record.get("command") or [""])[0], "Args": list(record.get("command") or [])[1:],
        "State": {"Status": status["state"], "Running": status["state"] == "running",
                  "Paused": status["state"] == "paused", "Pid": status["pid"],
                  "ExitCode": status["exit_code"] if status["exit_code"] is not None else 0,
                  "StartedAt": _rfc3339(status["started"]), "FinishedAt": _rfc3339(status["exited"])},
        "Image": record.get("image_id") or "", "ImageName": record.get("image", ""),
        "Bundle": record.get("bundle", ""), "StateDir": ctr.cdir.path if st else "",
        "LogPath": records.log_path(store_root, ctr.id),
        "Config": {"StopSignal": record.get("stop_signal", "SIGTERM"), "Cmd": list(record.get("command") or [])},
        "HostConfig": {"AutoRemove": bool(record.get("auto_remove")), "NetworkMode": record.get("network", ""),
                       "PortBindings": ports(ctr)},
        "NetworkSettings": {"Ports": ports(ctr)},
    }


def _rfc3339(seconds: float) -> str:
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def log_of(ctr: Ctr, store_root: str) -> tuple[str, str]:
    """(path, format) of the container's log: the shim's, as the runtime recorded it, else
    where rlx keeps it."""
    st = ctr.runtime_state() or {}
    shim = st.get("shim") or {}
    path = shim.get("log") or records.log_path(store_root, ctr.id)
    if not os.path.exists(path):
        raise RootlessError(f"logs: container {ctr.name} keeps no log: it ran in the foreground, its output "
                            "went to the terminal (rlx run -d keeps one)")
    return path, shim.get("log_format") or "k8s-file"


def finished(ctr: Ctr) -> bool:
    """No more output will come: the container has exited and its shim is gone."""
    st = ctr.runtime_state()
    if st is None:
        return True
    shim = st.get("shim")
    from rootless.linux import procfs
    if shim and procfs.is_alive(shim["pid"], shim.get("pid_start")):
        return False
    return state.status(ctr.cdir, st) == "stopped"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_time(text: str, now: float) -> str:
    """--since as the log's timestamps write it: a span back from now (10s, 5m, 1h30m, as
    podman reads Go durations), an RFC 3339 time, or seconds since the epoch."""
    from rootless.shim import logformat
    if text.replace(".", "", 1).isdigit():
        return logformat.timestamp(int(float(text) * 1e9))
    if "T" in text or text.count("-") >= 2:
        seconds = listing.parse_time(text)
        if not seconds:
            raise RootlessError(f"--since {text!r}: use a span such as 10m or 1h30m, or a time such as "
                                "2026-11-29T11:00:00Z")
        return logformat.timestamp(int(seconds * 1e9))
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in _UNITS and number:
            total += float(number) * _UNITS[char]
            number = ""
        else:
            number = "x"
            break
    if number or not text:
        raise RootlessError(f"--since {text!r}: use a span such as 10m or 1h30m, or a time such as "
                            "2026-11-29T11:00:00Z")
    return logformat.timestamp(int((now - total) * 1e9))


def port_lines(ctr: Ctr, private: str | None = None) -> list[str]:
    """`podman port`'s lines: "80/tcp -> 0.0.0.0:8080", or with a port only "0.0.0.0:8080"."""
    mappings = ports(ctr)
    if private is None:
        return [f"{p['container_port']}/{p.get('protocol') or 'tcp'} -> {p.get('host_ip') or '0.0.0.0'}:{p['host_port']}"
                for p in mappings]
    number, _, protocol = private.partition("/")
    chosen = [p for p in mappings if str(p["container_port"]) == number and (p.get("protocol") or "tcp") == (protocol or "tcp")]
    if not chosen:
        raise RootlessError(f"port: container {ctr.name} publishes no port {private} (rlx port {ctr.name} lists them)")
    return [listing.port_text(p).split("->")[0] for p in chosen]


def execute(ctr: Ctr, command: list[str], *, interactive: bool, tty: bool, env: list[str], user: str | None,
            cwd: str | None, debug: bool) -> int:
    """Run a command in the container through the runtime's exec, in this process; its exit
    status. Without -i its stdin is /dev/null, as podman gives it."""
    st = ctr.running_state("exec")
    # podman's -e NAME: the value of ours, or nothing when we have none
    env = [item if "=" in item else f"{item}={os.environ[item]}" for item in env if "=" in item or item in os.environ]
    from rootless.exec import launcher
    from rootless.rlx import launch
    if not interactive:
        launch.stdin_from_devnull()
    ctx = launch.context(debug)
    request = launcher.ExecRequest(list(command), env=list(env), user=user, cwd=cwd, tty=tty or None)
    return launcher.execute(ctx, ctr.cdir, st, request)
