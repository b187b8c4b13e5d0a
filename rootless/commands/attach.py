import os
import select

from rootless.shim import protocol as proto
from rootless.shim import client as shim_client
from rootless.linux import unixsock
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    return attach(ctx.root, parsed.args["id"], with_stdin=not parsed.options["no_stdin"])


def attach(root: str, container_id: str, with_stdin: bool = True) -> int:
    """Relay the container's output to ours (and our input to it) until it exits; its exit
    code."""
    shimmed = shim_client.ShimmedContainer(root, container_id)
    if not shimmed.shim_alive():
        return shimmed.wait_exit()["exit_code"]  # it has exited: only its exit code is left
    try:
        sock = unixsock.connect(os.path.join(shimmed.path, proto.SOCKET_NAME), f"the shim of container {shimmed.id}")
    except RootlessError:
        # Nobody listens: the shim has stopped listening since shim_alive(), as it does once the
        # container has exited (`run --shim` of a process that exits at once). wait_exit says
        # what there is to say: the exit code, or that there is none.
        return shimmed.wait_exit()["exit_code"]
    stdin = 0 if with_stdin else None
    saved = None
    if stdin is not None and os.isatty(stdin):
        import termios
        import tty
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        _send_size(sock, stdin)
        import signal
        signal.signal(signal.SIGWINCH, lambda *_: _send_size(sock, stdin))
    try:
        return _relay(sock, stdin)
    finally:
        if saved is not None:
            import termios
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)


def _relay(sock, stdin: int | None) -> int:
    outputs = {proto.STDOUT: 1, proto.STDERR: 2}
    watched = [sock] + ([stdin] if stdin is not None else [])
    buffer = b""
    while True:
        try:
            readable, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if stdin in readable:
            data = os.read(stdin, 65536)
            try:
                sock.sendall(proto.frame(proto.STDIN, data) if data else proto.frame(proto.CLOSE_STDIN))
            except OSError:  # EPIPE: the shim has sent its exit frame and closed; it is still to be read
                data = b""
            if not data:
                watched.remove(stdin)
        if sock in readable:
            data = sock.recv(65536)
            if not data:
                return 255  # the shim went away without an exit code
            frames, buffer = proto.split_frames(buffer + data)
            for kind, payload in frames:
                if kind in outputs:
                    _write_all(outputs[kind], payload)
                elif kind == proto.EXIT:
                    return int(payload)


def _send_size(sock, tty_fd: int) -> None:
    size = os.get_terminal_size(tty_fd)
    try:
        sock.sendall(proto.frame(proto.RESIZE, f"{size.lines} {size.columns}".encode()))
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
