"""AF_UNIX sockets by path: connecting to one a client names (--console-socket, a seccomp
agent), and paths longer than sun_path holds.

`socket` costs about 4 ms to import, so it is imported here, on first use only; the container
init connects before pivot_root, while the import still reads the host's files."""

import os

from rootless.errors import RootlessError


def via_short_path(path: str, use):
    """use(address) with an address for `path` that fits in sun_path (108 bytes): the path
    itself, or /proc/self/fd/N/NAME through an fd of its directory (state directories under a
    long --root are deeper than that). Returns what use returns."""
    if len(path.encode()) < 100:
        return use(path)
    directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return use(f"/proc/self/fd/{directory}/{os.path.basename(path)}")
    finally:
        os.close(directory)


def connect(path: str, what: str):
    """A connected stream socket to `path`; errors name `what` the socket is for."""
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        via_short_path(path, sock.connect)
    except OSError as err:
        sock.close()
        raise RootlessError(f"connect to {what} {path}: {err.strerror}") from None
    return sock
