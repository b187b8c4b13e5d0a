"""The systemd driver: a transient scope per container, through systemd's manager on D-Bus
(rootless.cgroups.dbus). runc's way: StartTransientUnit with Delegate=yes, the PID to move,
Slice, Description, DefaultDependencies=no, accounting and the resource properties, then wait
for the job's JobRemoved; the scope's cgroup is then ours to write (delegated), and the files
are written as the cgroupfs driver writes them, for what systemd has no property for.
"""

import os

from rootless.cgroups import cgpath, dbus, sdprops
from rootless.errors import RootlessError


def _cgroup_of(pid: int, proc: str, mount: str) -> str:
    try:
        with open(os.path.join(proc, str(pid), "cgroup")) as f:
            own = cgpath.own_cgroup(f.read())
    except OSError as err:
        raise RootlessError(f"read /proc/{pid}/cgroup: {err.strerror}") from None
    if own is None:
        raise RootlessError(f"/proc/{pid}/cgroup has no cgroup v2 entry")
    return os.path.join(mount, own.lstrip("/"))


def start(plan, container_id: str, pid: int, proc: str, mount: str) -> str:
    """Start the scope holding `pid`; returns its cgroup's path."""
    properties = sdprops.base(container_id, plan.slice, pid) + sdprops.for_writes(plan.translation.writes) \
        + plan.properties
    with dbus.Manager(plan.address, plan.uid) as manager:
        manager.start_transient(plan.unit, properties)
    path = _cgroup_of(pid, proc, mount)
    if not path.endswith("/" + plan.unit):
        raise RootlessError(f"systemd started {plan.unit} but pid {pid} is in {path}")
    return path


def stop(entry: dict) -> None:
    """Stop the scope and wait until systemd has removed it (and forget a failed state)."""
    with dbus.Manager(entry["address"], entry.get("uid", 0)) as manager:
        manager.stop(entry["unit"])


def set_properties(entry: dict, writes) -> None:
    properties = sdprops.for_writes(writes)
    if properties:
        with dbus.Manager(entry["address"], entry.get("uid", 0)) as manager:
            manager.set_properties(entry["unit"], properties)



def attach(entry: dict, pid: int) -> None:
    """Move `pid` into the scope through systemd (AttachProcessesToUnit, systemd 238): for
    `exec` from a caller that may not move itself into the user's delegated tree."""
    with dbus.Manager(entry["address"], entry.get("uid", 0)) as manager:
        manager.attach(entry["unit"], pid)
