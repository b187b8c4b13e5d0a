"""The created init's wait for `start`, done by rootless/create/initwait.c instead of this interpreter.

A created container that waits as Python keeps about 8 MiB resident (an interpreter and the
CLI's heap, inherited through the forks). initwait waits in a few pages, then executes the
container's process; its C source says what it does and why the process gets what a direct
execve would give it. It runs from a sealed memfd: the installed file is not reachable from
the container after pivot_root, and /proc/PID/exe of the waiting init names no host file
that the container could write to (the runc CVE-2019-5736 class).
"""

import fcntl
import os

from rootless.process import become

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "initwait")
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def load() -> int | None:
    """A sealed memfd holding initwait, or None when it was not built (no C compiler at
    install time). Call it while the host's files are reachable: before pivot_root."""
    try:
        with open(PROGRAM, "rb") as program:
            code = program.read()
    except FileNotFoundError:
        return None
    fd = os.memfd_create("rootless-init", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, code)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    return fd


def exec_waiting(program_fd: int, fifo: tuple[int, str], keep: int,
                 executable: str, args: list[str], env: dict) -> tuple[int, str]:
    """Become initwait: fds 0..keep-1 are the process's, fd `keep` the one exec.fifo is opened
    from (fifo: the fd and the name to open relative to it); every other fd is closed.
    Returns only if the execve failed (a seccomp profile may refuse execveat), with the fifo's
    fd and name: the caller then waits as Python."""
    fd, name = fifo
    # Out of the way of fds keep and keep+1 first: either may be one of the two.
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, keep + 2)
    program = fcntl.fcntl(program_fd, fcntl.F_DUPFD_CLOEXEC, keep + 2)
    # dup2 rather than dup3 (what os.dup2 calls for inheritable=False): the container's seccomp
    # filter is loaded already, and profiles that allow dup2 need not allow dup3.
    os.dup2(moved, keep)
    os.dup2(program, keep + 1)
    os.set_inheritable(keep + 1, False)
    become.pass_fds(keep, close_from=keep + 2)
    become.reset_signals()
    if name.startswith("/proc/self/fd/"):
        name = f"/proc/self/fd/{keep}"
    try:
        os.execve(keep + 1, ["rootless:init", str(keep), name, executable, *args], env)
    except OSError:
        os.close(keep + 1)
        return keep, name
