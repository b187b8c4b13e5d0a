"""What this host offers: a pure cgroup v2 mount, the caller's own cgroup, the D-Bus bus to
reach systemd and the UID to authenticate with. Paths and the environment are parameters, so
tests point them at temporary trees.
"""

import os

from rootless import paths
from rootless.cgroups import cgpath

MOUNT = paths.CGROUP_MOUNT
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"


def unified(mount: str = MOUNT) -> bool:
    """A pure cgroup v2 host: the cgroup2 root is mounted at /sys/fs/cgroup itself (or where
    ROOTLESS_CGROUP_MOUNT says). (Hybrid
    hosts keep a cgroup2 tree at /sys/fs/cgroup/unified with no controllers worth having:
    their controllers are bound to v1, which this runtime never writes.)"""
    return os.path.exists(os.path.join(mount, "cgroup.controllers"))


def own_cgroup(proc: str = "/proc") -> str | None:
    try:
        with open(os.path.join(proc, "self", "cgroup")) as f:
            return cgpath.own_cgroup(f.read())
    except OSError:
        return None


def controllers(path: str) -> list[str]:
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            return f.read().split()
    except OSError:
        return []


def nearest_existing(mount: str, relative: str) -> str:
    """The deepest existing directory on the way to MOUNT/relative."""
    path = os.path.join(mount, relative.lstrip("/"))
    while not os.path.isdir(path) and len(path) > len(mount):
        path = os.path.dirname(path)
    return path


def delegated(path: str) -> bool:
    """Can the caller make cgroups below `path` and move processes into them? (The kernel
    checks write access to the directory, and to cgroup.procs of the common ancestor.)"""
    return os.access(path, os.W_OK) and os.access(os.path.join(path, "cgroup.procs"), os.W_OK)


def host_uid(euid: int, uid_map: str) -> int:
    """The host UID behind `euid`, read from /proc/self/uid_map's text ("INSIDE OUTSIDE COUNT"
    lines). Under podman the runtime is UID 0 in podman's user namespace, but the user's bus
    authenticates the host UID that the kernel reports for the socket."""
    for line in uid_map.splitlines():
        fields = line.split()
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            continue
        inside, outside, count = map(int, fields)
        if inside <= euid < inside + count:
            return outside + euid - inside
    return euid


def read_host_uid(proc: str = "/proc") -> int:
    euid = os.geteuid()
    try:
        with open(os.path.join(proc, "self", "uid_map")) as f:
            return host_uid(euid, f.read())
    except OSError:
        return euid


def bus_address(system: bool, env) -> str | None:
    """The bus as runc finds it: the system bus for real root; else DBUS_SESSION_BUS_ADDRESS,
    else $XDG_RUNTIME_DIR/bus (podman filters the former out of the runtime's environment).
    None when there is no user bus to talk to."""
    if system:
        return env.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.exists(os.path.join(runtime_dir, "bus")):
        return "unix:path=" + os.path.join(runtime_dir, "bus")
    return None


def socket_address(address: str) -> str | bytes:
    """The first unix: address of a D-Bus address list as socket.connect takes it: a path, or
    bytes starting with NUL for an abstract socket. Other transports are refused."""
    for entry in address.split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        values = {}
        for pair in params.split(","):
            key, _, value = pair.partition("=")
            values[key] = _unescape(value)
        if "path" in values:
            return values["path"]
        if "abstract" in values:
            return b"\0" + values["abstract"].encode()
    raise ValueError(f"no unix socket in the D-Bus address {address!r}")


def _unescape(value: str) -> str:
    """D-Bus addresses escape bytes as %XX."""
    out, i = bytearray(), 0
    raw = value.encode()
    while i < len(raw):
        if raw[i:i + 1] == b"%" and i + 2 < len(raw) + 1:
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()
