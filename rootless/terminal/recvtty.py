"""rootless-recvtty: a console-socket receiver, as runc's contrib/cmd/recvtty.

    rootless-recvtty [-m|--mode single|null] [--pid-file FILE] SOCKET_PATH

It listens on SOCKET_PATH for what a runtime sends to --console-socket (the pty master, with
SCM_RIGHTS). single: takes one terminal and proxies it to its own stdin and stdout (raw mode
when stdin is a terminal) until the container's side closes, then exits. null: takes every
terminal that comes and throws its output away, so containers never block on a full
terminal, until killed.
"""

import os
import select
import signal
import socket
import sys

from rootless import args as a
from rootless.terminal import console
from rootless import state
from rootless.errors import RootlessError, UsageError

_OPTIONS = (
    a.Option(("m", "mode"), "mode", True, "single", help="single or null"),
    a.Option(("pid-file",), "pid_file", True, help="write this receiver's PID to FILE"),
    a.Option(("h", "help"), "help", help="show this help"),
)


def main(argv: list[str] | None = None) -> int:
    try:
        values, positionals = a.parse_options(_OPTIONS, sys.argv[1:] if argv is None else argv,
                                              stop_at_positional=False, context="")
        if values["help"]:
            print(__doc__.split("\n\n")[1].strip())
            return 0
        if values["mode"] not in ("single", "null"):
            raise UsageError(f"invalid --mode {values['mode']!r}: expected single or null")
        if len(positionals) != 1:
            raise UsageError("give one SOCKET_PATH (usage: rootless-recvtty [--mode single|null] "
                             "[--pid-file FILE] SOCKET_PATH)")
        return _serve(positionals[0], values["mode"], values["pid_file"])
    except RootlessError as err:
        sys.stderr.write(f"rootless-recvtty: {err.message}\n")
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(path: str, mode: str, pid_file: str | None) -> int:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The pid file first: a caller that waits for the socket to appear may read it at once.
    if pid_file:
        state.write_pid_file(os.path.abspath(pid_file), os.getpid())
    try:
        listener.bind(path)
    except OSError as err:
        if pid_file:
            os.unlink(os.path.abspath(pid_file))
        hint = ": remove it or choose another path" if os.path.exists(path) else ""
        raise RootlessError(f"listen on {path}: {err.strerror}{hint}") from None
    # Stopped by a signal, it still removes its socket (the finally below).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        listener.listen(8)
        if mode == "single":
            console.proxy(_accept_terminal(listener))
        else:
            _drain_every_terminal(listener)
        return 0
    finally:
        listener.close()
        os.unlink(path)


def _stop(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def _accept_terminal(listener: socket.socket) -> int:
    connection, _ = listener.accept()
    with connection:
        return console.receive_pty(connection)


def _drain_every_terminal(listener: socket.socket) -> None:
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == listener.fileno():
                try:
                    poller.register(_accept_terminal(listener), select.POLLIN)
                except RootlessError:
                    pass  # a client that sent no terminal
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the container's side closed
                data = b""
            if not data:
                poller.unregister(fd)
                os.close(fd)
