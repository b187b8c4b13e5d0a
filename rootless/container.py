"""Operations on an existing container: start, signal, delete. The verbs in rootless.commands
parse and print; these do the work, and tests call them directly."""

import os
import select
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import time

from rootless.linux import procfs
from rootless import state
from rootless.errors import RootlessError, fault


def signal_number(text: str) -> int:
    """runc's spellings: 9, KILL, SIGKILL, kill, sigkill."""
    if not text.isascii():  # str.isdigit and int() take other scripts' digits (kill ID ٣)
        raise RootlessError(f"invalid signal {text!r}: use a number or a name such as TERM, KILL, HUP")
    if text.isdigit():
        number = int(text)
        if 0 <= number < signal.NSIG:  # 0: kill(2)'s liveness check, which runc passes on
            return number
        raise RootlessError(f"invalid signal {text}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = None if name.startswith("SIG_") else getattr(signal, name, None)
    if not isinstance(number, int):
        raise RootlessError(f"invalid signal {text!r}: use a number or a name such as TERM, KILL, HUP")
    return int(number)


_CANNOT_START = {"running": "cannot start an already running container",
                 "stopped": "cannot start a container that has stopped"}


def start(cdir: state.ContainerDir, record: dict, notify_to: str | None = None, released: bytes | None = None):
    """Release the init waiting on exec.fifo (see rootless.create.protocol), then run the poststart
    hooks. A failing poststart hook is an error and stops the container (runtime.md, lifecycle
    step 9); `delete` then runs the poststop hooks.

    notify_to: the caller's NOTIFY_SOCKET. For a container created with one, the socket the
    container notifies is bound before the release and returned, for
    rootless.notify.relay_until_ready (after the lock is released: a `kill` must not wait for
    READY=1). Otherwise returns None.

    released: what the init answered, when the compiled front (rootless/front/front.c) released
    it already and hands what followed to Python (it does so for every answer but a plain "0")."""
    listener = None
    if released is None:
        current = state.status(cdir, record)
        if current != "created":
            # runc's words (clients match them), then the id
            raise RootlessError(_CANNOT_START.get(current, f"cannot start a container in the {current} state")
                                + f": {cdir.id}")
        if notify_to and record.get("notify"):
            from rootless import notify
            listener = notify.listen(cdir.path)
    answer = _release(cdir, record) if released is None else released
    if answer.startswith(b"1"):
        raise RootlessError(f"cannot start container {cdir.id}: {answer[1:].decode(errors='replace')}")
    if not answer.startswith(b"0"):
        raise RootlessError(f"cannot start container {cdir.id}: its init exited")
    number, _, path = answer[2:].partition(b" ")
    if answer[1:2] == b"e" and number.isdigit():
        # The execve of the process failed (rootless.create.init keeps the fifo open until it
        # succeeds): runc's words, `exec PATH: strerror`.
        raise RootlessError(f"exec {path.decode(errors='replace')}: {os.strerror(int(number)).lower()}")
    try:
        _run_hooks(cdir, record, "poststart", "running")
    except RootlessError as err:
        _kill_all(record)
        raise RootlessError(f"cannot start container {cdir.id}: {err.message} (the container was stopped)") from None
    return listener


def _release(cdir: state.ContainerDir, record: dict) -> bytes:
    """Read what the init writes to exec.fifo, which releases it: "0" and then nothing (its
    execve closed the fifo), "0e ERRNO PATH" (the execve failed), "1" and why a startContainer
    hook failed; nothing when the init died first. The fifo goes, whatever the answer."""
    # Non-blocking open: the reader never waits for a writer. Linux reports no hang-up on a fifo
    # that never had a writer, so poll waits until the init writes, while we watch the init.
    fd = os.open(cdir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    fault("start:opened")
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while not poller.poll(100):
            if not procfs.is_alive(record["pid"], record.get("pid_start")):
                return b""
        fault("start:ready")
        answer = os.read(fd, 4096)
        return answer + _read_to_end(fd, record) if answer.startswith(b"0") else answer
    finally:
        os.close(fd)
        try:
            os.unlink(cdir.fifo)
        except FileNotFoundError:
            pass


def _read_to_end(fd: int, record: dict) -> bytes:
    """What the init writes after "0" until its execve closes the fifo: nothing, or why the
    execve failed."""
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        if not poller.poll(100):
            if not procfs.is_alive(record["pid"], record.get("pid_start")):
                return data
            continue
        try:
            chunk = os.read(fd, 64)
        except BlockingIOError:
            continue
        if not chunk:
            return data
        data += chunk


def _run_hooks(cdir: state.ContainerDir, record: dict, kind: str, status: str, warn=None) -> None:
    """poststart or poststop, when create saved hooks (rootless.process.hooks.FILE). Without `warn` the
    first failure raises; with it each failure is a warning and the rest still run."""
    if not os.path.exists(os.path.join(cdir.path, "hooks.json")):
        return
    from rootless.process import hooks
    try:
        saved = hooks.load(cdir.path)
    except RootlessError as err:
        if warn is None:
            raise
        warn(err.message)  # delete goes on: a corrupt file must not strand the container
        return
    hooks.run_all(kind, saved, hooks.state_for(record, status, record["pid"]), warn=warn)


def _cgroup(record: dict) -> str | None:
    """The container's cgroup directory, when it has one that still exists."""
    path = (record.get("cgroup") or {}).get("path")
    return path if path and os.path.isdir(path) else None


def _kill_all(record: dict) -> None:
    cgroup = _cgroup(record)
    if cgroup:
        # Frozen first, so no process escapes by forking while the others die.
        from rootless.cgroups import fs
        fs.kill_all(cgroup)
        return
    for pid in container_pids(record) or [record["pid"]]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _cgroup_pids(record: dict) -> list[int] | None:
    """The PIDs in the container's cgroup, None when it has none."""
    cgroup = _cgroup(record)
    if not cgroup:
        return None
    from rootless.cgroups import fs
    return sorted(fs.procs(cgroup))


def container_pids(record: dict) -> list[int]:
    """Every host PID of the container: its cgroup's when it has one, else its PID namespace
    when it has one, else the init's tree."""
    pid = record["pid"]
    if not procfs.is_alive(pid, record.get("pid_start")):
        return []
    in_cgroup = _cgroup_pids(record)
    if in_cgroup is not None:
        return in_cgroup
    if "pid" in record.get("namespaces", {}).get("new", []):
        return procfs.pids_in_pid_namespace(pid)
    return procfs.descendants(pid)


def kill(cdir: state.ContainerDir, record: dict, signum: int, every: bool = False) -> None:
    current = state.status(cdir, record)
    if current == "stopped" and every:
        # As runc (1.1 and current): what is left in the cgroup gets the signal and kill
        # succeeds. containerd's shim sends `kill --all ID 9` once the init of a container
        # without a PID namespace of its own has exited, and logs an error if it fails.
        targets = _cgroup_pids(record) or []
    elif current == "stopped":
        raise RootlessError(f"container not running: {cdir.id}")  # containerd matches "container not running"
    else:
        targets = container_pids(record) if every else [record["pid"]]
    for pid in targets:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def wait_stopped(record: dict, timeout: float = 10.0) -> bool:
    return procfs.wait_gone(record["pid"], record.get("pid_start"), timeout)


def delete(cdir: state.ContainerDir, record: dict, force: bool, warn=None) -> None:
    """Stop what runs if asked, run the poststop hooks (failures go to `warn`), remove the state."""
    current = state.status(cdir, record)
    if current in ("running", "paused") and not force:
        raise RootlessError(f"cannot delete container {cdir.id} that is not stopped: {current} "
                            "(stop it first or use --force)")
    if current != "stopped":
        # A created container's init, or --force: everything in it goes.
        _kill_all(record)
        if not wait_stopped(record):
            raise RootlessError(f"container {cdir.id}: its init (pid {record['pid']}) did not die after SIGKILL")
    fault("delete:killed")
    if record.get("network"):
        from netns import attach
        attach.detach(record["network"])
    fault("delete:detached")
    if (record.get("cgroup") or {}).get("driver") in ("cgroupfs", "systemd"):
        from rootless.cgroups import manager
        manager.destroy(record)
    shim = record.get("shim")
    if shim and shim["pid"] != os.getpid():
        _wait_for_shim(shim)
    _run_hooks(cdir, record, "poststop", "stopped", warn)
    fault("delete:hooks")
    cdir.remove()


def _wait_for_shim(shim: dict, timeout: float = 5.0) -> None:
    """The shim records the exit and tells its clients once the init is gone; delete leaves no
    shim behind, so it waits for that, and kills a shim that does not finish."""
    deadline = time.monotonic() + timeout
    while procfs.is_alive(shim["pid"], shim.get("pid_start")):
        if time.monotonic() > deadline:
            try:
                os.kill(shim["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.01)
