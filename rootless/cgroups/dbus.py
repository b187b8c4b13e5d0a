"""systemd's manager over D-Bus: a connection of our own on a unix socket, the messages from
rootless.cgroups.dbuswire (which says why no D-Bus library). Only the systemd driver imports
this module, and only for containers that use it.

The connection authenticates by hand (SASL EXTERNAL) with the host UID: inside podman's user
namespace geteuid() is 0, but the bus sees the socket's peer credentials as the host UID and
refuses any other claim.
"""

import _socket  # the C module: `socket` imports enum and selectors (about 15 ms)
import time

from rootless.errors import RootlessError
from rootless.cgroups import dbuswire as wire, host

BUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
SYSTEMD = ("org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager")
JOB_REMOVED = (f"type='signal',sender='{SYSTEMD[0]}',interface='{SYSTEMD[2]}',member='JobRemoved'",)
TIMEOUT = 30.0  # a job on a loaded systemd; a scope starts in milliseconds


class BusError(RootlessError):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def _authenticate(sock: _socket.socket, uid: int) -> None:
    sock.sendall(b"\0AUTH EXTERNAL " + str(uid).encode().hex().encode() + b"\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        reply += chunk
    if not reply.startswith(b"OK "):
        raise RootlessError(f"the D-Bus bus refused UID {uid}: {reply.decode(errors='replace').strip()}")
    sock.sendall(b"BEGIN\r\n")


class Manager:
    """A connection to systemd's manager (the user's, or the system's for root)."""

    def __init__(self, address: str, uid: int):
        self.address = address
        self._serial = 0
        self._received = b""
        self._job_signals: list[tuple] = []  # JobRemoved bodies read while waiting for a reply
        try:
            target = host.socket_address(address)
        except ValueError as err:
            raise RootlessError(str(err)) from None
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        self.sock.settimeout(5.0)
        try:
            self.sock.connect(target)
            _authenticate(self.sock, uid)
        except OSError as err:
            self.sock.close()
            raise RootlessError(f"connect to the D-Bus bus {address}: {err.strerror or err}") from None
        self.call("Hello", destination=BUS)
        self.call("AddMatch", "s", JOB_REMOVED, destination=BUS)
        self.call("Subscribe")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _receive(self, deadline: float, waiting_for: str) -> wire.Message:
        while True:
            try:
                message, used = wire.parse(self._received)
            except wire.WireError as err:
                raise RootlessError(f"the D-Bus bus {self.address} sent {err}") from None
            if message is not None:
                self._received = self._received[used:]
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RootlessError(f"systemd: {waiting_for}: no answer in {TIMEOUT:.0f} s")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as err:
                raise RootlessError(f"the D-Bus bus {self.address}: {err.strerror or err}") from None
            if not chunk:
                raise RootlessError(f"the D-Bus bus {self.address} closed the connection")
            self._received += chunk

    def _keep_if_job_removed(self, message: wire.Message) -> None:
        if message.kind == wire.SIGNAL and message.fields.get(wire.MEMBER) == "JobRemoved" \
                and message.fields.get(wire.INTERFACE) == SYSTEMD[2] and len(message.body) == 4:
            self._job_signals.append(message.body)

    def call(self, member: str, signature: str = "", body: tuple = (), destination: tuple = SYSTEMD) -> tuple:
        """A method call and its reply's body; an error reply is a BusError."""
        self._serial += 1
        serial = self._serial
        try:
            self.sock.sendall(wire.method_call(serial, *destination, member, signature, body))
        except OSError as err:
            raise RootlessError(f"the D-Bus bus {self.address}: {err.strerror or err}") from None
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._receive(deadline, member)
            if reply.kind in (wire.METHOD_RETURN, wire.ERROR) and reply.fields.get(wire.REPLY_SERIAL) == serial:
                break
            self._keep_if_job_removed(reply)
        if reply.kind == wire.ERROR:
            name = str(reply.fields.get(wire.ERROR_NAME, ""))
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
            raise BusError(name, f"systemd: {text}")
        return reply.body

    def _wait_job(self, job: str, what: str) -> None:
        """Wait for JobRemoved of `job`; its result must be "done"."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            while self._job_signals:
                _id, path, unit, result = self._job_signals.pop(0)
                if path == job:
                    if result != "done":
                        raise RootlessError(f"systemd: {what} {unit}: job {result}")
                    return
            self._keep_if_job_removed(self._receive(deadline, what))

    def start_transient(self, unit: str, properties: list) -> None:
        call = ("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", properties, []))
        try:
            (job,) = self.call(*call)
        except BusError as err:
            if not err.name.endswith("UnitExists"):
                raise
            # A failed scope of an earlier container with this name stays loaded until reset.
            self.reset_failed(unit)
            (job,) = self.call(*call)
        self._wait_job(job, "start")

    def stop(self, unit: str) -> None:
        try:
            (job,) = self.call("StopUnit", "ss", (unit, "replace"))
        except BusError as err:
            if err.name.endswith("NoSuchUnit"):
                return
            raise
        try:
            self._wait_job(job, "stop")
        finally:
            self.reset_failed(unit)

    def reset_failed(self, unit: str) -> None:
        try:
            self.call("ResetFailedUnit", "s", (unit,))
        except BusError:
            pass

    def set_properties(self, unit: str, properties: list) -> None:
        self.call("SetUnitProperties", "sba(sv)", (unit, True, properties))

    def attach(self, unit: str, pid: int) -> None:
        self.call("AttachProcessesToUnit", "ssau", (unit, "", [pid]))
