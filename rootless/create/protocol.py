"""The protocol between the CLI process (parent) and the stages it forks, in one place.

Two pipes, created by the parent before it forks the namespace stage:
  to_parent: child -> parent, written by the namespace stage and then by the container init
  to_child:  parent -> child, read by the namespace stage and then by the container init
Each message is one JSON object on one line (well under PIPE_BUF, so writes are atomic).

The order, for `create`:
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

End of file on to_child means the parent died: the children exit instead of waiting forever,
so a killed `create` leaves no process behind. End of file on to_parent before "ready" means
a child died without a word.
"""

from rootless import jsonlite as json
import os

from rootless.errors import RootlessError


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
            chunk = os.read(self.read_fd, 4096)
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

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def make_pipes() -> tuple[Channel, Channel]:
    """(parent's end, child's end)."""
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    return Channel(to_parent_r, to_child_w), Channel(to_child_r, to_parent_w)
