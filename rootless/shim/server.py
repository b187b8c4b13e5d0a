"""The container shim: rootless's own conmon. One process per shim-managed container that
lives as long as the container, away from any CLI, and serves it:

  - it owns the container's stdio (pipes, or the pty master) and keeps its stdin open;
  - it writes the output to a log file (rootless.shim.logformat) and to attached clients;
  - it serves `attach` and `wait` on STATEDIR/attach (rootless.shim.protocol), with resize;
  - it records the exit code and time in STATEDIR/exit.json when the init exits, then tells
    the clients, deletes the container when asked (--rm), and exits.

How it starts (rootless.shim.launch, the CLI side): the CLI double-forks and executes a fresh
interpreter here (`python -I -S`: no site, no CLI heap: the shim's memory counts for every
running container), with the create request as JSON and a sync pipe. The shim becomes child
subreaper, makes the stdio, and forks a child that creates the container in-process
(rootless.create.launcher, imported in the child only) with that stdio; when the child exits, the
init's parent is gone and the init becomes the shim's child. The shim then binds its socket
and tells the CLI, which starts the container (or leaves that to its caller, for create).

Only modules with no heavy imports are loaded here: os, time, select, _signal, _socket,
_prctl, and rootless's jsonlite and the shim's logformat and protocol.
"""

import os
import select
import _signal as signal  # the C module: `signal` imports enum
import _socket
import sys
import time

import _prctl

from rootless.shim import protocol as proto
from rootless import jsonlite as json
from rootless.shim import logformat

EXIT_FILE = "exit.json"
DRAIN_SECONDS = 2.0   # output still read after the init exits (from processes it left)


def main(spec_text: str) -> None:
    spec = json.loads(spec_text)
    os.chdir("/")  # every path in spec is absolute; the caller's directory stays unbusy
    signal.signal(signal.SIGHUP, signal.SIG_IGN)     # the CLI's terminal may go away
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)    # so may any client
    _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)  # the init becomes ours once create's child exits
    sync = spec["sync_fd"]
    try:
        shim = Shim(spec)
    except ShimError as err:
        os.write(sync, json.dumps({"type": "error", "msg": str(err)}).encode())
        os._exit(1)
    os.write(sync, json.dumps({"type": "created", "pid": shim.init_pid}).encode())
    os.close(sync)
    shim.serve()
    shim.finish()
    os._exit(0)


class ShimError(Exception):
    pass


class Shim:
    def __init__(self, spec: dict):
        self.spec = spec
        self.state_dir = os.path.join(spec["root"], spec["id"])
        self.clients: dict = {}          # fd -> [socket, unread bytes]
        self.exit_code: int | None = None
        stdin_r, self.stdin_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        console, console_child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        result_r, result_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(result_r)
            _create(spec, (stdin_r, out_w, err_w), console_child.detach(), result_w)
        for fd in (stdin_r, out_w, err_w, result_w, spec["stderr_fd"]):
            os.close(fd)
        console_child.close()
        result = _read_all(result_r)
        os.waitpid(child, 0)
        if not result:
            raise ShimError("the shim's create child died")
        message = json.loads(result)
        if message["type"] == "error":
            raise ShimError(message["msg"])
        self.init_pid = message["pid"]
        try:
            self._take_over(console, message["terminal"])
        except (OSError, ShimError) as err:
            # The container exists by now: a shim that cannot serve it leaves nothing behind.
            os.kill(self.init_pid, signal.SIGKILL)
            os.waitpid(self.init_pid, 0)
            _delete(spec)
            where = f" `{err.filename}`" if getattr(err, "filename", None) else ""
            raise ShimError(f"shim: {getattr(err, 'strerror', None) or err}{where}") from None

    def _take_over(self, console, terminal: bool) -> None:
        self.master = _receive_fd(console) if terminal else None
        console.close()
        if self.master is not None:
            for fd in (self.out_r, self.err_r, self.stdin_w):
                os.close(fd)
            self.out_r = self.err_r = self.stdin_w = None
        self.log_format = self.spec["log_format"]
        self.log = os.open(self.spec["log_path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        _bind(self.listener, os.path.join(self.state_dir, proto.SOCKET_NAME))
        self.listener.listen(16)
        # SIGCHLD wakes the poll through this pipe (the handler itself does nothing).
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    # The loop --------------------------------------------------------------------------

    def serve(self) -> None:
        poller = select.poll()
        outputs = {fd: name for fd, name in ((self.out_r, "stdout"), (self.err_r, "stderr"), (self.master, "stdout"))
                   if fd is not None}
        for fd in (*outputs, self.listener.fileno(), self.wake_r):
            poller.register(fd, select.POLLIN)
        deadline = None
        self._reap()
        while outputs:
            if self.exit_code is not None and deadline is None:
                deadline = time.monotonic() + DRAIN_SECONDS
            timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if deadline is not None and timeout == 0:
                break
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd in outputs:
                    if not self._pump(fd, outputs[fd]):
                        poller.unregister(fd)
                        del outputs[fd]
                elif fd == self.wake_r:
                    _drain(self.wake_r)
                    self._reap()
                elif fd == self.listener.fileno():
                    self._accept(poller)
                elif fd in self.clients:
                    self._from_client(fd, poller)
        while self.exit_code is None:  # output closed early (the process closed its stdio)
            self._wait_init()

    def _pump(self, fd: int, stream: str) -> bool:
        try:
            data = os.read(fd, 65536)
        except OSError:   # EIO from a pty master: every slave fd is closed
            data = b""
        if not data:
            return False
        if self.log is not None:
            try:
                _write_all(self.log, logformat.format_output(stream, data, self.log_format, logformat.timestamp()))
            except OSError:
                # A full disk (or a removed file system) ends the log, not the container's output:
                # attached clients still get it.
                os.close(self.log)
                self.log = None
        self._broadcast(proto.frame(proto.STDOUT if stream == "stdout" else proto.STDERR, data))
        return True

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self._record(status)

    def _wait_init(self) -> None:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            return
        except ChildProcessError:
            self.exit_code = 255
            return
        if pid == self.init_pid:
            self._record(status)

    def _record(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        self.exit_code = 128 - code if code < 0 else code
        record = {"exit_code": self.exit_code, "exited_at": logformat.timestamp()}
        path = os.path.join(self.state_dir, EXIT_FILE)
        try:
            with open(path + ".tmp", "w") as f:
                f.write(json.dumps(record))
            os.rename(path + ".tmp", path)
        except OSError:
            pass  # deleted meanwhile (delete --force): nobody is left to read it

    # Clients ---------------------------------------------------------------------------

    def _accept(self, poller) -> None:
        try:
            fd, _ = self.listener._accept()
        except OSError:
            return
        client = _socket.socket(fileno=fd)
        client.settimeout(2.0)  # a client that stops reading is dropped, never waited for
        self.clients[fd] = [client, b""]
        poller.register(fd, select.POLLIN)

    def _from_client(self, fd: int, poller) -> None:
        entry = self.clients[fd]
        try:
            data = entry[0].recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(fd, poller)
            return
        frames, entry[1] = proto.split_frames(entry[1] + data)
        for kind, payload in frames:
            if kind == proto.STDIN:
                target = self.master if self.master is not None else self.stdin_w
                if target is not None:
                    try:
                        _write_all(target, payload)
                    except OSError:
                        pass
            elif kind == proto.RESIZE and self.master is not None:
                rows, cols = (int(n) for n in payload.split())
                _resize(self.master, rows, cols)
            elif kind == proto.CLOSE_STDIN:
                if self.master is not None:
                    _write_all(self.master, b"\x04")  # ^D: end of input on a terminal
                elif self.stdin_w is not None:
                    os.close(self.stdin_w)
                    self.stdin_w = None

    def _broadcast(self, data: bytes) -> None:
        for fd, (client, _) in list(self.clients.items()):
            try:
                client.sendall(data)
            except OSError:
                client.close()
                del self.clients[fd]

    def _drop(self, fd: int, poller) -> None:
        poller.unregister(fd)
        self.clients.pop(fd)[0].close()

    # The end ---------------------------------------------------------------------------

    def finish(self) -> None:
        self._broadcast(proto.frame(proto.EXIT, str(self.exit_code).encode()))
        for client, _ in self.clients.values():
            client.close()
        self.listener.close()
        if self.log is not None:
            try:
                os.fsync(self.log)  # the log is complete once the exit is known
            except OSError:
                pass
            os.close(self.log)
        if self.spec.get("remove"):
            _delete(self.spec)


def _create(spec: dict, stdio: tuple[int, int, int], console_fd: int, result_fd: int) -> None:
    """The create child: the container's init inherits stdio; create's own messages go to the
    CLI's stderr. Reports {"type": "created", "pid", "terminal"} or {"type": "error"}."""
    os.close(spec["sync_fd"])  # the CLI waits for its end of file: no process of ours may hold it
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
        os.close(fd)
    sys.stderr = open(spec["stderr_fd"], "w", closefd=True)
    try:
        from rootless.create import launcher
        from rootless.context import Context
        from rootless.errors import RootlessError
        ctx = Context(**spec["context"])
        request = launcher.Request(**spec["request"], console_fd=console_fd)
        request.record_extra = {"shim": {"pid": os.getppid(), "pid_start": _start_time(os.getppid()),
                                         "log": spec["log_path"], "log_format": spec["log_format"]}}
        try:
            job = launcher.prepare(ctx, request)
            _, record = launcher.create(ctx, request, job=job)
            message = {"type": "created", "pid": record["pid"], "terminal": job.terminal}
        except RootlessError as err:
            message = {"type": "error", "msg": err.message}
    except Exception as err:
        message = {"type": "error", "msg": f"shim: {type(err).__name__}: {err}"}
    sys.stderr.flush()
    os.write(result_fd, json.dumps(message).encode())
    os._exit(0)


def _delete(spec: dict) -> None:
    """--rm: what `delete` does, once the container has exited."""
    try:
        from rootless import container, state
        with state.ContainerDir(spec["root"], spec["id"]) as cdir:
            container.delete(cdir, cdir.load(), force=True, warn=lambda message: None)
    except Exception:
        pass  # deleted by someone else first
    if spec.get("after_remove"):
        # the caller's own cleanup (rlx: its container directory), once the container is gone
        argv = spec["after_remove"]
        pid = os.fork()
        if pid == 0:
            try:
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        os.waitpid(pid, 0)


def _start_time(pid: int) -> int | None:
    from rootless.linux import procfs
    return procfs.start_time(pid)


def _bind(sock, path: str) -> None:
    from rootless.linux import unixsock
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    unixsock.via_short_path(path, sock.bind)


def _receive_fd(sock) -> int:
    size = 4  # one int
    _, ancillary, _, _ = sock.recvmsg(4096, _socket.CMSG_SPACE(size))
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return int.from_bytes(data[:size], sys.byteorder)
    raise ShimError("the container init sent no terminal")


def _resize(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import termios
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, rows.to_bytes(2, sys.byteorder) + cols.to_bytes(2, sys.byteorder) + bytes(4))
    except OSError:
        pass


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            os.close(fd)
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
