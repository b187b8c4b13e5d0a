"""Starting and stopping network helpers (pasta, slirp4netns) without subprocess: fork, exec,
and pidfds, so that the helper gets exactly the fds it needs and nothing of the CLI's."""

import fcntl
import os
import select
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import time

from rootless.linux import procfs
from rootless.errors import RootlessError

TUN = "/dev/net/tun"


def find(name: str, path: str | None = None) -> str | None:
    for folder in (path if path is not None else os.environ.get("PATH", "/usr/bin:/bin")).split(":"):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    for folder in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):  # a trimmed PATH (podman) still finds them
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def require(name: str, package: str, tun: str = TUN) -> str:
    """The helper's path, or an error that says how to get it and /dev/net/tun working."""
    found = find(name)
    if found is None:
        raise RootlessError(f"rootless.network={name}: {name} is not installed: install it (Debian: apt install "
                            f"{package}) or choose another rootless.network")
    if not os.access(tun, os.R_OK | os.W_OK):
        raise RootlessError(f"rootless.network={name}: open {tun}: permission denied: {name} needs it readable and "
                            f"writable by you (as root: chmod 0666 {tun})")
    return found


def spawn(argv: list[str], fds: tuple[int, ...] = ()) -> tuple[int, int]:
    """Fork and exec argv with stdin and stdout on /dev/null, stderr on a pipe, and `fds` as
    fds 3, 4, ... (nothing else). Returns (pid, read end of the stderr pipe, non-blocking)."""
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in (*fds, err_w)]
            null = os.open("/dev/null", os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(high[-1], 2)
            for target, fd in enumerate(high[:-1], start=3):
                os.dup2(fd, target)
            os.closerange(3 + len(fds), 1 << 20)
            # Python ignores SIGPIPE and SIGXFSZ, and exec keeps that; pasta refuses to start
            # when SIGPIPE is ignored already ("Couldn't install signal handlers").
            for signum in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(signum, signal.SIG_DFL)
            os.execv(argv[0], argv)
        except BaseException:
            os._exit(127)
    os.close(err_w)
    os.set_blocking(err_r, False)
    return pid, err_r


def read_error(fd: int, limit: int = 4096) -> str:
    """What the helper said on stderr (its last meaningful line), without waiting for more."""
    try:
        data = os.read(fd, limit)
    except (BlockingIOError, OSError):
        data = b""
    lines = [line.strip() for line in data.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line and "syslog" not in line]
    return lines[-1] if lines else ""


def wait_exit(pid: int, timeout: float) -> int | None:
    """Exit status of our child `pid`, or None if it still runs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.002)


def stop(pid: int | None, start: int | None, timeout: float = 5.0) -> None:
    """SIGKILL the process that is PID with this start time, and wait until it is gone (or a
    zombie of someone else's)."""
    if not pid or not procfs.is_alive(pid, start):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while procfs.is_alive(pid, start) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)   # our child (slirp4netns under `run`)
        except ChildProcessError:
            pass
        time.sleep(0.002)


def remove(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def start_watcher(init_pid: int, helper_pid: int | None, keep_fds: tuple[int, ...], files: list[str],
                  helper_pid_file: str | None = None) -> int:
    """Fork the watcher: a tiny process that waits for the container's init (or the helper) to
    exit, then kills the helper and removes its files. It also holds `keep_fds` (slirp4netns's
    exit fd), so the helper learns of its end. Returns its PID.

    Without helper_pid (pasta, whose watcher starts first) the helper is read from
    helper_pid_file when the init is gone. The helper does not outlive the container even when
    nobody runs `delete` (the container exited, or its init was killed): pasta does not exit
    when its namespace dies."""
    init_fd = os.pidfd_open(init_pid)
    try:
        helper_fd = os.pidfd_open(helper_pid) if helper_pid else None
    except OSError:
        os.close(init_fd)
        raise
    pid = os.fork()
    if pid == 0:
        try:
            _watch(init_fd, helper_fd, keep_fds, files, helper_pid_file)
        finally:
            os._exit(0)
    os.close(init_fd)
    if helper_fd is not None:
        os.close(helper_fd)
    return pid


def _watch(init_fd: int, helper_fd: int | None, keep_fds: tuple[int, ...], files: list[str],
           helper_pid_file: str | None) -> None:
    """The watcher, after the fork: imports nothing, holds nothing of the CLI's."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = {0, 1, 2, init_fd, *keep_fds} | ({helper_fd} if helper_fd is not None else set())
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    poller = select.poll()
    for fd in (init_fd, helper_fd):
        if fd is not None:
            poller.register(fd, select.POLLIN)
    while True:
        try:
            poller.poll()
            break
        except InterruptedError:
            continue
    if helper_fd is None and helper_pid_file:
        # pasta may still be starting (its CLI was killed mid-create): its pid file may not be
        # written yet, and it may fork while we look. Every process whose command line names
        # this container's pid file is pasta for this container: kill them until none is left.
        _kill_processes_naming(helper_pid_file)
        helper_fd = _pidfd_from_file(helper_pid_file)
    if helper_fd is not None:
        try:
            signal.pidfd_send_signal(helper_fd, signal.SIGKILL)
        except OSError:
            pass
        select.select([helper_fd], [], [], 5.0)  # readable once the helper has exited
    remove(files)


def _kill_processes_naming(argument: str, quiet_rounds: int = 5) -> None:
    """SIGKILL every process with `argument` in its command line, until several rounds in a row
    (20 ms apart) find none: a process that forks meanwhile is caught in a later round."""
    wanted = argument.encode()
    quiet = 0
    while quiet < quiet_rounds:
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if wanted not in f.read().split(b"\0"):
                        continue
                os.kill(int(name), signal.SIGKILL)
                found = True
            except OSError:
                continue
        quiet = 0 if found else quiet + 1
        time.sleep(0.02)


def _pidfd_from_file(path: str) -> int | None:
    """A pidfd of the helper named in its pid file, checked by name: a PID that was reused
    meanwhile by another program is left alone."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        fd = os.pidfd_open(pid)
    except (OSError, ValueError):
        return None
    try:
        with open(f"/proc/{pid}/comm") as f:
            name = f.read().strip()
    except OSError:
        name = ""
    if not name.startswith(("pasta", "passt")):  # pasta re-executes as passt.avx2 where it can
        os.close(fd)
        return None
    return fd
