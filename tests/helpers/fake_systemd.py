"""A stand-in for systemd's manager on a private dbus-daemon, for tests of the systemd driver's
D-Bus side on hosts without systemd: run as `python fake_systemd.py ADDRESS RECORD [BASE]`.

With BASE (a cgroup v2 directory the caller may write, the stand-in for user@UID.service) it
also does what systemd does with the cgroups: a started scope is the directory BASE/SLICE/UNIT
with the PIDs moved into it, AttachProcessesToUnit moves one more, and a stopped scope's
processes are killed and its directory removed before the job ends.

It owns org.freedesktop.systemd1 and answers the Manager calls the driver makes, appending
each call (member and body) to RECORD as a JSON line. StartTransientUnit and StopUnit return a
job and then emit JobRemoved with result "done" ("failed" for a unit whose name contains
"fail"); a unit started twice answers UnitExists until ResetFailedUnit; StopUnit of an unknown
unit answers NoSuchUnit. It prints "ready" once it owns the name.
"""

import json
import os
import socket
import sys
import time

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


def _start(base: str, properties: list, unit: str) -> str:
    props = {name: value for name, (_sig, value) in properties}
    slice_dir = os.path.join(base, props["Slice"])
    os.makedirs(slice_dir, exist_ok=True)
    path = os.path.join(slice_dir, unit)
    os.mkdir(path)
    for pid in props["PIDs"]:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(pid))
    return path


def _stop(path: str) -> None:
    for _ in range(500):
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = f.read().split()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    os.rmdir(path)


def serve(address: str, record: str, base: str | None = None) -> None:
    from rootless.cgroups import host
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(host.socket_address(address))
    from rootless.cgroups.dbus import _authenticate
    _authenticate(sock, os.geteuid())
    conn = DBusConnection(sock)
    conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.systemd1"))
    print("ready", flush=True)
    units: dict[str, str | None] = {}  # unit -> its cgroup (with BASE)
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
                units[unit] = _start(base, msg.body[2], unit) if base else None
            elif units.get(unit):
                _stop(units[unit])
                units[unit] = None
            conn.send(new_signal(MANAGER, "JobRemoved", "uoss", (jobs, job, unit, result)))
        elif member == "ResetFailedUnit":
            units.pop(msg.body[0], None)
            conn.send(new_method_return(msg))
        elif member == "AttachProcessesToUnit" and units.get(msg.body[0]):
            for pid in msg.body[2]:
                with open(os.path.join(units[msg.body[0]], "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            conn.send(new_method_return(msg))
        else:  # Subscribe, SetUnitProperties
            conn.send(new_method_return(msg))


if __name__ == "__main__":
    serve(*sys.argv[1:4])
