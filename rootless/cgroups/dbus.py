"""systemd's manager over D-Bus, through jeepney (pure Python, about 25 ms to import). Only the
systemd driver imports this module, and only for containers that use it.

The connection authenticates by hand (SASL EXTERNAL) with the host UID: inside podman's user
namespace geteuid() is 0, but the bus sees the socket's peer credentials as the host UID and
refuses any other claim (jeepney would send geteuid()).
"""

import socket

from jeepney import DBusAddress, MatchRule, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection
from jeepney.low_level import HeaderFields, MessageType

from rootless.errors import RootlessError
from rootless.cgroups import host

SYSTEMD = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                      interface="org.freedesktop.systemd1.Manager")
TIMEOUT = 30.0  # a job on a loaded systemd; a scope starts in milliseconds


class BusError(RootlessError):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def _authenticate(sock: socket.socket, uid: int) -> None:
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
        try:
            target = host.socket_address(address)
        except ValueError as err:
            raise RootlessError(str(err)) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(5.0)
        try:
            sock.connect(target)
            _authenticate(sock, uid)
            sock.settimeout(None)
            self.conn = DBusConnection(sock)
        except OSError as err:
            sock.close()
            raise RootlessError(f"connect to the D-Bus bus {address}: {err.strerror or err}") from None
        self._jobs = self.conn.filter(MatchRule(type="signal", interface=SYSTEMD.interface, member="JobRemoved"),
                                      bufsize=64)
        self._queue = self._jobs.__enter__()
        self.call(message_bus.AddMatch(MatchRule(type="signal", sender=SYSTEMD.bus_name,
                                                 interface=SYSTEMD.interface, member="JobRemoved")))
        self.call(new_method_call(SYSTEMD, "Subscribe"))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, message):
        reply = self.conn.send_and_get_reply(message, timeout=TIMEOUT)
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name, "")
            text = reply.body[0] if reply.body else name
            raise BusError(name, f"systemd: {text}")
        return reply.body

    def _wait_job(self, job: str, what: str) -> None:
        """Wait for JobRemoved of `job`; its result must be "done"."""
        while True:
            try:
                signal = self.conn.recv_until_filtered(self._queue, timeout=TIMEOUT)
            except TimeoutError:
                raise RootlessError(f"systemd: {what}: no answer in {TIMEOUT:.0f} s") from None
            _id, path, unit, result = signal.body
            if path == job:
                if result != "done":
                    raise RootlessError(f"systemd: {what} {unit}: job {result}")
                return

    def start_transient(self, unit: str, properties: list) -> None:
        method = new_method_call(SYSTEMD, "StartTransientUnit", "ssa(sv)a(sa(sv))",
                                 (unit, "replace", properties, []))
        try:
            (job,) = self.call(method)
        except BusError as err:
            if not err.name.endswith("UnitExists"):
                raise
            # A failed scope of an earlier container with this name stays loaded until reset.
            self.reset_failed(unit)
            (job,) = self.call(method)
        self._wait_job(job, "start")

    def stop(self, unit: str) -> None:
        try:
            (job,) = self.call(new_method_call(SYSTEMD, "StopUnit", "ss", (unit, "replace")))
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
            self.call(new_method_call(SYSTEMD, "ResetFailedUnit", "s", (unit,)))
        except BusError:
            pass

    def set_properties(self, unit: str, properties: list) -> None:
        self.call(new_method_call(SYSTEMD, "SetUnitProperties", "sba(sv)", (unit, True, properties)))

    def attach(self, unit: str, pid: int) -> None:
        self.call(new_method_call(SYSTEMD, "AttachProcessesToUnit", "ssau", (unit, "", [pid])))
