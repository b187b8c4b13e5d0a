"""A stand-in for systemd's manager on a private dbus-daemon, for tests of the systemd driver's
D-Bus side on hosts without systemd: run as `python fake_systemd.py ADDRESS RECORD`.

It owns org.freedesktop.systemd1 and answers the Manager calls the driver makes, appending
each call (member and body) to RECORD as a JSON line. StartTransientUnit and StopUnit return a
job and then emit JobRemoved with result "done" ("failed" for a unit whose name contains
"fail"); a unit started twice answers UnitExists until ResetFailedUnit; StopUnit of an unknown
unit answers NoSuchUnit. It prints "ready" once it owns the name.
"""

import json
import socket
import sys

from jeepney import DBusAddress, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection
from jeepney.low_level import HeaderFields, MessageType

MANAGER = DBusAddress("/org/freedesktop/systemd1", interface="org.freedesktop.systemd1.Manager")


def _plain(value):
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def serve(address: str, record: str) -> None:
    from rootless.cgroups import host
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(host.socket_address(address))
    from rootless.cgroups.dbus import _authenticate
    import os
    _authenticate(sock, os.geteuid())
    conn = DBusConnection(sock)
    conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.systemd1"))
    print("ready", flush=True)
    units: set[str] = set()
    jobs = 0
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        member = msg.header.fields.get(HeaderFields.member)
        with open(record, "a") as f:
            f.write(json.dumps({"member": member, "body": _plain(msg.body)}) + "\n")
        if member in ("StartTransientUnit", "StopUnit"):
            unit = msg.body[0]
            if member == "StartTransientUnit" and unit in units:
                conn.send(new_error(msg, "org.freedesktop.systemd1.UnitExists", "s", (f"Unit {unit} already exists.",)))
                continue
            if member == "StopUnit" and unit not in units:
                conn.send(new_error(msg, "org.freedesktop.systemd1.NoSuchUnit", "s", (f"Unit {unit} not loaded.",)))
                continue
            jobs += 1
            job = f"/org/freedesktop/systemd1/job/{jobs}"
            conn.send(new_method_return(msg, "o", (job,)))
            result = "failed" if "fail" in unit else "done"
            if member == "StartTransientUnit":
                units.add(unit)
            conn.send(new_signal(MANAGER, "JobRemoved", "uoss", (jobs, job, unit, result)))
        elif member == "ResetFailedUnit":
            units.discard(msg.body[0])
            conn.send(new_method_return(msg))
        else:  # Subscribe, SetUnitProperties
            conn.send(new_method_return(msg))


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
