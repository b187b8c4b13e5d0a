"""Connecting to an AF_UNIX socket a client names (--console-socket, a seccomp agent).

`socket` costs about 4 ms to import, so it is imported here, on first use only; the container
init connects before pivot_root, while the import still reads the host's files."""

from rootless.errors import RootlessError


def connect(path: str, what: str):
    """A connected stream socket to `path`; errors name `what` the socket is for."""
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise RootlessError(f"connect to {what} {path}: {err.strerror}") from None
    return sock
