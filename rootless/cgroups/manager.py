"""Which cgroup a container gets, and the operations every verb needs on it.

Drivers (the state records which one, with the cgroup's path: podman passes --systemd-cgroup
to `create` only, so every later verb reads the driver from state.json):

- "systemd": a transient scope per container, started by systemd's manager over D-Bus (the
  user's manager, or the system's for root) with Delegate=yes and the init's PID, so the
  scope is the container's from its first instruction (rootless.cgroups.systemd);
- "cgroupfs": a directory made below the caller's own delegated cgroup (rootless.cgroups.fs);
- "none": nothing is delegated (cgroup v1 or hybrid hosts, no user bus, --cgroup-manager
  disabled): the container runs in the caller's cgroup. Limits it asked for are named in one
  warning, or refused with the `rootless.cgroups=required` annotation or --cgroups-required.

The cgroup is joined by the namespace stage before it creates any namespace
(rootless.create.protocol's "cgroup" step): the init and everything it forks are inside it
before `create` returns, and a cgroup namespace, when asked, is rooted at it.
"""

import os

from rootless.cgroups import cgpath, fs, host, resources
from rootless.errors import RootlessError

REQUIRED_ANNOTATION = "rootless.cgroups"
INAPPLICABLE = "cgroup v2 has no such setting"
NOT_DELEGATED = "their controllers are not enabled in {path} (not delegated to it)"


class Plan:
    """The decision for one container, before anything exists."""

    def __init__(self, driver: str, translation: resources.Translation, reason: str | None = None, **fields):
        self.driver, self.translation, self.reason = driver, translation, reason
        self.relative = self.slice = self.unit = self.address = self.own = None
        self.uid = 0
        self.properties: list = []
        self.devices = None  # rootless.cgroups.devices.Rules for a root container's device filter
        self.__dict__.update(fields)

    def describe(self) -> str:
        where = {"cgroupfs": f" at {self.relative}", "systemd": f" {self.unit} in {self.slice} ({self.address})",
                 "none": f" ({self.reason})"}[self.driver]
        return f"cgroup: driver {self.driver}{where}"


def required(config: dict, flag: bool) -> bool:
    return flag or (config.get("annotations") or {}).get(REQUIRED_ANNOTATION) == "required"


def plan(config: dict, container_id: str, manager: str, *, rootless: bool, env,
         mount: str = host.MOUNT, proc: str = "/proc") -> Plan:
    """Pure but for reading the host: the driver, where the cgroup goes, what it will hold.
    Bad values in linux.resources fail here, before anything is made."""
    linux = config.get("linux") or {}
    translation = resources.translate(linux.get("resources"))
    if manager == "disabled":
        return Plan("none", translation, "--cgroup-manager disabled")
    if not host.unified(mount):
        return Plan("none", translation, f"{mount} is not a cgroup v2 hierarchy (cgroup v1 or hybrid host)")
    found = _plan(config, linux, container_id, manager, rootless, env, translation, mount, proc)
    if not rootless and found.driver != "none":
        # As runc as root: every container's cgroup gets a device filter, from the rules and
        # what runc allows after them (its default nodes the config does not list again).
        from rootless.cgroups import devices
        found.devices = devices.rules_of(linux)
    return found


def _plan(config, linux, container_id, manager, rootless, env, translation, mount, proc) -> Plan:
    cgroups_path = linux.get("cgroupsPath") or ""
    if manager == "systemd":
        from rootless.cgroups import sdprops
        slice_, unit = cgpath.systemd_unit(cgroups_path, container_id, rootless)
        properties = sdprops.from_annotations(config.get("annotations"))
        address = host.bus_address(not rootless, env)
        if address is None:
            return Plan("none", translation, "no user D-Bus bus: DBUS_SESSION_BUS_ADDRESS unset and no "
                                             "$XDG_RUNTIME_DIR/bus (is systemd --user running? loginctl enable-linger)")
        return Plan("systemd", translation, slice=slice_, unit=unit, address=address,
                    uid=0 if not rootless else host.read_host_uid(proc), properties=properties)
    own = host.own_cgroup(proc)
    if own is None:
        return Plan("none", translation, "the caller has no cgroup v2 in /proc/self/cgroup")
    relative = cgpath.cgroupfs_path(cgroups_path, container_id, own)
    parent = host.nearest_existing(mount, relative)
    if not host.delegated(parent):
        return Plan("none", translation, f"the cgroup {parent} is not delegated to this user "
                                         "(use --systemd-cgroup, or run inside a delegated scope)")
    return Plan("cgroupfs", translation, relative=relative, own=own)


def warning(not_applied: list[str], reason: str | None, inapplicable: list[str]) -> str | None:
    """The one line that names every limit not applied, with why."""
    parts = []
    if not_applied:
        parts.append(f"{', '.join(not_applied)} ({reason})")
    if inapplicable:
        parts.append(f"{', '.join(inapplicable)} ({INAPPLICABLE})")
    return ("limits not applied: " + "; ".join(parts)) if parts else None


def check_required(plan_: Plan, container_id: str, is_required: bool) -> list[str]:
    """For driver "none": the names not applied; refused when a cgroup is required."""
    names = [w for w in plan_.translation.names if w not in plan_.translation.inapplicable]
    if is_required:
        asked = f" for {', '.join(names)}" if names else ""
        raise RootlessError(f"cannot create container {container_id}: a cgroup is required{asked} "
                            f"(rootless.cgroups=required) but none can be made: {plan_.reason}")
    return names


class Cgroup:
    """The container's cgroup while `create` makes it; record() is what state.json keeps."""

    def __init__(self, plan_: Plan, container_id: str, required: bool = False, mount: str = host.MOUNT,
                 proc: str = "/proc"):
        self.plan, self.id, self.required, self.mount, self.proc = plan_, container_id, required, mount, proc
        self.path: str | None = None
        self.created: list[str] = []
        self.started = False

    def join(self, pid: int) -> list[str]:
        """Put `pid` (the namespace stage) in the container's cgroup, made for it, and write
        the limits. Returns the names of the limits whose controller is not there."""
        p = self.plan
        if p.driver == "cgroupfs":
            wanted = {w.controller for w in p.translation.writes if w.controller} | set(fs.CONTROLLERS)
            if p.own and os.path.dirname(p.relative) == p.own:
                # Below our own cgroup: a service's, where we may be what keeps it from
                # enabling controllers (fs.make_room).
                fs.make_room(os.path.join(self.mount, p.own.lstrip("/")), {os.getpid(), pid}, wanted)
            self.path, self.created = fs.make(self.mount, p.relative, wanted)
            try:
                fs.add_process(self.path, pid)
            except (RootlessError, OSError) as err:
                if self.required:
                    raise
                return self._without_cgroup(err)
        else:
            from rootless.cgroups import systemd
            self.path = systemd.start(p, self.id, pid, self.proc, self.mount)
            self.started = True  # a scope that failed to start is reset by the next start
        not_applied = fs.apply(self.path, p.translation.writes)
        if p.devices is not None:
            from rootless.cgroups import devices
            devices.attach(self.path, p.devices)
        return not_applied

    def _without_cgroup(self, err) -> list[str]:
        """The caller's own cgroup looked delegated but the kernel refused a child of it (a
        systemd service without Delegate=yes: its cgroup holds the caller, EOPNOTSUPP or
        EBUSY): the container runs in the caller's cgroup, as runc's rootless cgroupfs
        manager lets it, and every limit is named as not applied."""
        if self.path:
            fs.remove(self.path)
        fs.remove_dirs(self.created)
        message = err.message if isinstance(err, RootlessError) else (err.strerror or str(err))
        self.plan = Plan("none", self.plan.translation, f"cannot use the cgroup {self.plan.relative}: {message}")
        self.path, self.created = None, []
        return [name for w in self.plan.translation.writes for name in w.names]

    def record(self) -> dict:
        p = self.plan
        entry = {"driver": p.driver, "path": self.path}
        if p.driver == "cgroupfs":
            entry["created"] = self.created
        elif p.driver == "systemd":
            entry.update(unit=p.unit, slice=p.slice, address=p.address, uid=p.uid)
        else:
            entry["reason"] = p.reason
        return entry

    def remove(self) -> None:
        """Undo join after a failed create: whatever runs in it is killed, then it goes."""
        if self.started:
            from rootless.cgroups import systemd
            systemd.stop(self.record())
        elif self.path:
            fs.kill_all(self.path)
            fs.remove(self.path)
            fs.remove_dirs(self.created)


# Operations on a created container, from its record in state.json.

def path_of(record: dict) -> str | None:
    entry = record.get("cgroup") or {}
    path = entry.get("path")
    return path if path and os.path.isdir(path) else None


def none_reason(record: dict) -> str:
    entry = record.get("cgroup") or {}
    if entry.get("driver") in (None, "none"):
        return entry.get("reason") or "it was created without one"
    return "its cgroup is gone"


def destroy(record: dict) -> None:
    """Remove the container's cgroup (after its processes are gone): stop the scope and wait
    for systemd to remove it, or rmdir the directories create made."""
    entry = record.get("cgroup") or {}
    path = path_of(record)
    if path and fs.procs(path):
        fs.kill_all(path)  # what outlived the init (no PID namespace): nothing may hold it
    if entry.get("driver") == "systemd":
        from rootless.cgroups import systemd
        systemd.stop(entry)
    if entry.get("driver") in ("cgroupfs", "systemd") and entry.get("path"):
        fs.remove(entry["path"])
        fs.remove_dirs([d for d in entry.get("created", []) if d != entry["path"]])


def update(record: dict, new: dict) -> tuple[dict, list[str]]:
    """Apply `new` LinuxResources over the saved ones; returns (merged resources, names not
    applied). systemd's unit learns the values too, so a reload keeps them."""
    merged = resources.merge(record.get("resources"), new)
    # As runc does: the whole set is written again, so that memory.swap follows a new memory
    # limit (swap is memory+swap in OCI terms) and the whole must still make sense.
    translation = resources.translate(merged)
    path = path_of(record)
    if path is None:
        raise RootlessError(f"cannot update container {record['id']}: it has no cgroup ({none_reason(record)})")
    entry = record["cgroup"]
    if entry.get("driver") == "systemd":
        from rootless.cgroups import systemd
        systemd.set_properties(entry, translation.writes)
    return merged, fs.apply(path, translation.writes)


def freeze(record: dict, on: bool) -> None:
    """pause/resume: cgroup.freeze, waiting until the kernel reports the whole subtree
    (un)frozen in cgroup.events."""
    path = path_of(record)
    verb = "pause" if on else "resume"
    if path is None:
        raise RootlessError(f"cannot {verb} container {record['id']}: it has no cgroup of its own "
                            f"({none_reason(record)}); rootless pauses a container by freezing its cgroup v2")
    fs.freeze(path, on)
