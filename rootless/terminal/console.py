"""Terminals: receiving a pty master sent with SCM_RIGHTS (the --console-socket protocol runc
and conmon speak), and proxying it to the caller's terminal for a foreground `run`."""

import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty

from rootless.errors import RootlessError


def receive_pty(sock: socket.socket) -> int:
    """The pty master the container init sent (its message is the slave's path), without ONLCR:
    runc clears it on the pty it proxies, so the container's "\n" reaches a caller whose
    stdout is a pipe or a file as "\n", not "\r\n" (a caller's terminal adds the "\r" itself,
    see proxy). A --console-socket receiver gets the pty as the kernel makes it, as from runc."""
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise RootlessError("the container init sent no terminal")
    try:
        attrs = termios.tcgetattr(fds[0])
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(fds[0], termios.TCSANOW, attrs)
    except termios.error:
        pass  # not a terminal after all: nothing to translate
    return fds[0]


def set_raw(fd: int) -> None:
    """Raw input, but output processing kept (OPOST), as runc's terminal library sets a
    caller's terminal: "\n" still shows as a new line at the start of the next one."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] |= termios.OPOST
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def window_size(fd: int) -> dict | None:
    """The terminal's size as process.consoleSize says it, or None when fd is no terminal."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    except OSError:
        return None
    return {"height": rows, "width": cols}


def copy_window_size(source_fd: int, target_fd: int) -> None:
    try:
        size = fcntl.ioctl(source_fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(target_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass  # not a terminal: the pty keeps its size


def proxy(master: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy the caller's input to the pty and the pty's output to the caller until the
    container's side closes. The caller's terminal is raw meanwhile, so keys like ^C reach the
    container instead of this process."""
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        set_raw(stdin)
        copy_window_size(stdin, master)
        signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin, master))
    watched = [master, stdin]
    try:
        while True:
            try:
                readable, _, _ = select.select(watched, [], [])
            except InterruptedError:
                continue
            if master in readable:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed, the container is gone
                    data = b""
                if not data:
                    return
                os.write(stdout, data)
            if stdin in readable:
                data = os.read(stdin, 65536)
                if data:
                    os.write(master, data)
                else:
                    watched.remove(stdin)  # end of input: keep showing output
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
