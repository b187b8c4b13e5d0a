"""Facts about host processes read from /proc: identity (start time), liveness, namespaces;
and the one way the runtime writes to /proc (write_once, checked to land on procfs)."""

import errno
import os
import time

from rootless import paths
from rootless.errors import SyscallError


def write_once(path: str, text: str) -> None:
    """One write(2) to a /proc file: the kernel takes ID maps, sysctls and the like only whole,
    in a single write. The file opened must lie on the kernel's procfs (require_procfs).
    Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        require_procfs(fd, path)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def require_procfs(fd: int, path: str) -> None:
    """Raise OSError unless fd lies on procfs. A /proc that the image made a symlink, or a
    mount over it, would send writes meant for the kernel (LSM labels, setgroups, sysctls) to
    files of its choosing (the CVE-2019-16884 / CVE-2019-19921 class): check the file opened,
    not the path."""
    # Not at the top: state, kill and the like read /proc without ctypes. Every process that
    # writes to /proc (the create stages, exec) has loaded syscalls long before, so this is
    # no import after pivot_root.
    from rootless.linux import syscalls as sc
    try:
        kind = sc.fstatfs_type(fd, path)
    except SyscallError as err:
        raise OSError(err.errno, f"fstatfs: {os.strerror(err.errno)}", path) from None
    if kind != sc.PROC_SUPER_MAGIC:
        raise OSError(errno.EXDEV, "not on procfs (is /proc in the rootfs a symlink or a fake?)", path)


def stat_fields(pid: int, proc: str = paths.PROC) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3, the state, is index 0)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int, proc: str = paths.PROC) -> int | None:
    """Clock ticks after boot when PID started: with the PID it names one process for good."""
    fields = stat_fields(pid, proc)
    return int(fields[19]) if fields else None


def is_alive(pid: int, expected_start: int | None, proc: str = paths.PROC) -> bool:
    """True if PID runs, is not a zombie, and is the process that started at expected_start."""
    if pid <= 0:
        return False
    fields = stat_fields(pid, proc)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return expected_start is None or int(fields[19]) == expected_start


def wait_gone(pid: int, expected_start: int | None, timeout: float) -> bool:
    """Wait until PID no longer runs (gone, or a zombie awaiting its parent): what a killed
    process that is not our child allows. False when it still runs after timeout seconds."""
    deadline = time.monotonic() + timeout
    while is_alive(pid, expected_start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def ns_inode(pid: int, nstype: str, proc: str = paths.PROC) -> int | None:
    try:
        return os.stat(f"{proc}/{pid}/ns/{nstype}").st_ino
    except OSError:
        return None


def pids_in_pid_namespace(init_pid: int, proc: str = paths.PROC) -> list[int]:
    """Host PIDs of every process that shares init_pid's PID namespace (and its descendants').

    Works without cgroups: a container with its own PID namespace is exactly that set.
    """
    target = ns_inode(init_pid, "pid", proc)
    if target is None:
        return []
    found = []
    for name in os.listdir(proc):
        if name.isdigit() and ns_inode(int(name), "pid", proc) == target:
            found.append(int(name))
    return sorted(found)


def descendants(root_pid: int, proc: str = paths.PROC) -> list[int]:
    """root_pid and every process below it, for containers that share the host PID namespace."""
    children: dict[int, list[int]] = {}
    for name in os.listdir(proc):
        if name.isdigit():
            fields = stat_fields(int(name), proc)
            if fields:
                children.setdefault(int(fields[1]), []).append(int(name))
    result, queue = [], [root_pid]
    while queue:
        pid = queue.pop()
        result.append(pid)
        queue.extend(children.get(pid, ()))
    return sorted(result)
