"""The container process's controlling terminal: a pty from the container's devpts, its master
sent over a console socket (as runc sends it, with SCM_RIGHTS), its slave as stdio. Used by the
container init and by `exec -t`, after they have entered the container's mount namespace."""

import os

from rootless.errors import RootlessError
from rootless.linux import syscalls as sc


def setup(socket, console_fd: int | None, size: dict | None, clear_onlcr: bool = False) -> None:
    """socket: the socket module, imported by the caller while the host's files were reachable.
    clear_onlcr: the pty goes to the runtime's own proxy (a foreground exec), which runc sets up
    without ONLCR (rootless.terminal.console.receive_pty says why); done here, before the process
    can write, since the process runs as soon as it is set up."""
    if console_fd is None:
        raise RootlessError("process.terminal is true but no --console-socket was given")
    master, slave = os.openpty()
    if clear_onlcr:
        sc.tty_clear_onlcr(slave)
    if size:
        sc.tty_set_winsize(slave, size.get("height", 0), size.get("width", 0))
    try:
        name = os.ttyname(slave)
    except OSError:
        name = "/dev/ptmx"
    with socket.socket(fileno=console_fd) as console:
        socket.send_fds(console, [name.encode()], [master])
    os.close(master)
    os.setsid()
    sc.tty_set_ctty(slave)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)
