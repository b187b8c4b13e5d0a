"""The protocol between the CLI process (parent) and the stages it forks, in one place.

One connected pair of sockets, made by the parent before it forks the namespace stage: the
parent keeps one end; the namespace stage and then the container init use the other. Each
message is one JSON object on one line, written in one call (a message is small, and the stage
stops writing before the init starts, so lines never interleave).

The order, for `create`:
  -1. the parent sends the job (InitJob): what the stage and the init need, with the fds they
     use passed along (SCM_RIGHTS). The stage is forked before the parent has read config.json,
     so that it loads the init's modules while the parent plans (on another CPU when there is
     one); the job cannot come through the fork.
  0. only when the container gets a cgroup of its own (rootless.cgroups.manager), nsstage
     first sends
       {"type": "cgroup", "pid": P}     and waits for
       {"type": "joined"}               (the parent made the cgroup, or systemd's scope, with P
                                        in it and the limits written)
  1. nsstage joins namespaces given by path; if it creates a user namespace it sends
       {"type": "userns", "pid": P}     and waits for
       {"type": "mapped"}               (the parent wrote P's uid_map/gid_map, or newuidmap did)
  2. nsstage creates the other namespaces, forks the container init and exits; the init
     first sends
       {"type": "init", "pid": P}       (P as seen from the caller's PID namespace: the init
                                        reads /proc/self before it mounts anything)
     The init sends everything after "userns", so messages cannot overtake one another.
  2b. only when config.json has prestart, createRuntime, createContainer or startContainer
     hooks (rootless.process.hooks): init makes the mounts, then, before pivot_root, sends
       {"type": "hooks"}                and waits for
       {"type": "continue", "state": S} (the parent ran prestart and createRuntime in the
                                        runtime namespaces, once it knew the init's PID; S is
                                        the OCI state they got, "creating")
     init runs the createContainer hooks with S and keeps S for startContainer.
  3. init sets up the rootfs and the process, then sends
       {"type": "ready", "warnings": [...], "notes": [...]}   (notes: for --debug) and waits for
       {"type": "ack"}                  (the parent has written state.json and the pid file)
     then blocks opening exec.fifo for writing until `start` opens it for reading, runs the
     startContainer hooks, and writes "0" (go) or "1" and the failed hook's error (then exits).
  Any stage that fails sends {"type": "error", "msg": "..."} and exits.

End of file at the children's end means the parent died: they exit instead of waiting
forever, so a killed `create` leaves no process behind (and a stage that never got its job, as
when config.json is refused, exits quietly). End of file at the parent's end before "ready"
means a child died without a word.

rootless exec's stage speaks the same messages over two pipes (make_pipes); it is forked with
what it needs, and gets no job.
"""

from rootless import jsonlite as json
import marshal
import os
import sys

from rootless.errors import RootlessError

# What InitJob's fields hold is plain data or the plan's objects (rootless.oci.mounts,
# rootless.oci.namespaces, rootless.process.seccomp's Program), marshalled as (_OBJECT, module,
# class name, fields). A field whose name ends in _fd holds an fd of the parent's: it travels
# beside the data (SCM_RIGHTS), as (_FD, its index there). The config, JSON as parsed, is
# marshalled as it is, without a walk through it (the biggest field, and the only one).
_OBJECT, _FD = "\0object", "\0fd"
_MAX_FDS = 253  # the kernel's SCM_MAX_FD


class InitJob:
    """What the namespace stage and the init need, computed by the parent before they start."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


class Channel:
    """One end of the protocol: a read fd and a write fd, line-framed JSON."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = b""

    def send(self, message_type: str, **fields) -> None:
        fields["type"] = message_type
        os.write(self.write_fd, json.dumps(fields).encode() + b"\n")

    def receive(self) -> dict | None:
        """The next message, or None at end of file."""
        while b"\n" not in self._buffer:
            try:
                chunk = os.read(self.read_fd, 4096)
            except ConnectionResetError:  # the peer closed with our message unread: gone all the same
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def expect(self, message_type: str) -> dict:
        message = self.receive()
        if message is None:
            raise RootlessError(f"lost contact with the runtime while waiting for {message_type!r}")
        if message["type"] == "error":
            raise RootlessError(message["msg"])
        if message["type"] != message_type:
            raise RootlessError(f"protocol error: expected {message_type!r}, got {message['type']!r}")
        return message

    def send_job(self, job: InitJob) -> None:
        """The job, and the fds its fields name, in one frame: its length, then its marshal."""
        import _socket
        fds: list[int] = []
        rest = InitJob(**{name: value for name, value in vars(job).items() if name != "config"})
        payload = marshal.dumps((job.config, _pack(rest, fds)))
        frame = len(payload).to_bytes(8, "little") + payload
        sock = _socket.socket(fileno=self.write_fd)
        try:
            rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
            sent = sock.sendmsg([frame], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)] if fds else [])
            while sent < len(frame):
                sent += sock.send(frame[sent:])
        finally:
            sock.detach()

    def receive_job(self) -> InitJob | None:
        """The job send_job sent, its fds now ours (close-on-exec); None at end of file."""
        import _socket
        sock = _socket.socket(fileno=self.read_fd)
        try:
            try:
                data, ancillary, flags, _ = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * _MAX_FDS),
                                                         _socket.MSG_CMSG_CLOEXEC)
            except ConnectionResetError:
                return None
            fds = [int.from_bytes(raw[i:i + 4], sys.byteorder) for level, kind, raw in ancillary
                   if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
                   for i in range(0, len(raw) - 3, 4)]
            if flags & _socket.MSG_CTRUNC:
                raise RootlessError("protocol error: the job's fds were cut short")
            if not data:
                return None
            while len(data) < 8 or len(data) < 8 + int.from_bytes(data[:8], "little"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return None
                data += chunk
        finally:
            sock.detach()
        end = 8 + int.from_bytes(data[:8], "little")
        self._buffer = data[end:]
        config, rest = marshal.loads(data[8:end])
        job = _unpack(rest, fds)
        job.config = config
        return job

    def close(self) -> None:
        for fd in dict.fromkeys((self.read_fd, self.write_fd)):
            try:
                os.close(fd)
            except OSError:
                pass


def _pack(value, fds: list[int]):
    kind = type(value)
    if kind is list:
        return [_pack(item, fds) for item in value]
    if kind is tuple:
        return tuple(_pack(item, fds) for item in value)
    if kind is dict:
        return {key: _pack(item, fds) for key, item in value.items()}
    if kind in (str, int, bool, float, bytes) or value is None:
        return value
    fields = {}
    for name, item in vars(value).items():
        if name.endswith("_fd") and type(item) is int:
            fds.append(item)
            fields[name] = (_FD, len(fds) - 1)
        else:
            fields[name] = _pack(item, fds)
    return (_OBJECT, kind.__module__, kind.__qualname__, fields)


def _unpack(value, fds: list[int]):
    kind = type(value)
    if kind is list:
        return [_unpack(item, fds) for item in value]
    if kind is dict:
        return {key: _unpack(item, fds) for key, item in value.items()}
    if kind is not tuple:
        return value
    if value and value[0] == _FD:
        return fds[value[1]]
    if value and value[0] == _OBJECT:
        _, module, name, fields = value
        cls = getattr(sys.modules.get(module) or __import__(module, fromlist=["_"]), name)
        made = cls.__new__(cls)
        made.__dict__.update({key: _unpack(item, fds) for key, item in fields.items()})
        return made
    return tuple(_unpack(item, fds) for item in value)


def make_socket_pair() -> tuple[Channel, Channel]:
    """(parent's end, child's end) of the create protocol."""
    import _socket
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    parent_fd, child_fd = parent.detach(), child.detach()
    return Channel(parent_fd, parent_fd), Channel(child_fd, child_fd)


def make_pipes() -> tuple[Channel, Channel]:
    """(parent's end, child's end)."""
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    return Channel(to_parent_r, to_child_w), Channel(to_child_r, to_parent_w)
