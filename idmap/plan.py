"""The ID-mapping plan: the uid_map and gid_map lines of the container's new user namespace and
how they get written (by the parent directly, or by the setuid helpers newuidmap/newgidmap).

Pure: built from config.json and facts about the caller, printed under --debug, unit-tested
without privileges; apply.py carries it out. Problems the kernel or newuidmap would report
with a bare EINVAL or EPERM are caught here, with a message naming the entry and the fix.
"""

from idmap._record import Record
from idmap.subid import MAX_ID, SubIdRange
from rootless.errors import RootlessError

MAX_LINES = 340  # the kernel's limit on lines in one uid_map or gid_map (Linux 4.15 and later)
KINDS = ("uid", "gid")


class IdMapError(RootlessError):
    """An ID map that cannot be planned or written."""


class IdMapping(Record):
    container_id: int
    host_id: int
    size: int

    @classmethod
    def from_oci(cls, d: dict) -> "IdMapping":
        """From a config.json entry {"containerID", "hostID", "size"}."""
        try:
            values = (d["containerID"], d["hostID"], d["size"])
        except (KeyError, TypeError):
            raise IdMapError(f"ID mapping {d!r} needs containerID, hostID and size") from None
        if not all(type(value) is int for value in values):
            raise IdMapError(f"ID mapping {d!r}: containerID, hostID and size must be integers")
        return cls(*values)

    def __str__(self) -> str:
        return f"{{containerID: {self.container_id}, hostID: {self.host_id}, size: {self.size}}}"


class IdMapPlan(Record):
    uid_mappings: tuple[IdMapping, ...]
    gid_mappings: tuple[IdMapping, ...]
    method: str  # "direct" (the parent writes /proc/PID/*_map) | "helper" (newuidmap/newgidmap)
    deny_setgroups: bool  # write "deny" to /proc/PID/setgroups first: the kernel's condition
                          # for an unprivileged process to write gid_map itself
    warnings: tuple[str, ...]

    def describe(self) -> str:
        how = "newuidmap/newgidmap" if self.method == "helper" else "written directly"
        if self.deny_setgroups:
            how += ", setgroups deny"
        return f"id maps ({how}): uid {_brief(self.uid_mappings)}; gid {_brief(self.gid_mappings)}"


def _brief(mappings) -> str:
    return ", ".join(f"{m.container_id}->{m.host_id} x{m.size}" for m in mappings)


def plan_idmaps(uid_mappings: list[dict] | None, gid_mappings: list[dict] | None, *, caller_uid: int,
                caller_gid: int, caller_name: str | None, subuid: list[SubIdRange], subgid: list[SubIdRange],
                have_newuidmap: bool, have_newgidmap: bool, privileged: bool) -> IdMapPlan:
    """privileged: the caller is root in the initial user namespace, so it may write any map
    itself. Otherwise the maps are checked against the caller's own IDs and subordinate ranges,
    which is what newuidmap/newgidmap would allow."""
    caller = {"uid": caller_uid, "gid": caller_gid}
    ranges = {"uid": subuid, "gid": subgid}
    helpers = {"uid": have_newuidmap, "gid": have_newgidmap}
    if not uid_mappings and not gid_mappings:
        if privileged:
            raise IdMapError("config.json: a user namespace created by root needs linux.uidMappings "
                             "and linux.gidMappings")
        return _automatic_plan(caller, caller_name, ranges, helpers)
    if not uid_mappings or not gid_mappings:
        given, missing = ("uidMappings", "gidMappings") if uid_mappings else ("gidMappings", "uidMappings")
        raise IdMapError(f"config.json has linux.{given} but no linux.{missing}: give both, "
                         "or neither for the automatic map")
    maps = {"uid": _parse("uidMappings", uid_mappings), "gid": _parse("gidMappings", gid_mappings)}
    for kind in KINDS:
        _check_shape(f"{kind}Mappings", maps[kind])
    if privileged:
        return IdMapPlan(maps["uid"], maps["gid"], "direct", False, ())
    for kind in KINDS:
        _check_allowed(kind, maps[kind], caller[kind], caller_name, ranges[kind])
    if all(len(maps[k]) == 1 and (maps[k][0].host_id, maps[k][0].size) == (caller[k], 1) for k in KINDS):
        # The one map the kernel lets an unprivileged process write without a helper.
        return IdMapPlan(maps["uid"], maps["gid"], "direct", True, ())
    missing = [f"new{kind}map" for kind in KINDS if not helpers[kind]]
    if missing:
        raise IdMapError(f"these uidMappings and gidMappings need {' and '.join(missing)}, not found: "
                         "install the Debian package uidmap")
    return IdMapPlan(maps["uid"], maps["gid"], "helper", False, ())


def _parse(field: str, entries: list) -> tuple[IdMapping, ...]:
    try:
        return tuple(IdMapping.from_oci(entry) for entry in entries)
    except IdMapError as err:
        raise IdMapError(f"config.json linux.{field}: {err}") from None


def _check_shape(field: str, mappings: tuple[IdMapping, ...]) -> None:
    """What the kernel refuses with EINVAL: empty ranges, IDs past 2**32-2, too many lines,
    and ranges overlapping on either side."""
    if len(mappings) > MAX_LINES:
        raise IdMapError(f"{field} has {len(mappings)} entries; the kernel takes at most {MAX_LINES}")
    for m in mappings:
        if m.size < 1:
            raise IdMapError(f"{field} entry {m}: size must be at least 1")
        if min(m.container_id, m.host_id) < 0 or max(m.container_id, m.host_id) + m.size - 1 > MAX_ID:
            raise IdMapError(f"{field} entry {m} reaches outside IDs 0-{MAX_ID}")
    for side in ("container", "host"):
        ordered = sorted(mappings, key=lambda m: _first(m, side))
        for a, b in zip(ordered, ordered[1:]):
            if _first(a, side) + a.size > _first(b, side):
                raise IdMapError(f"{field} entries {a} and {b} overlap in {side} IDs")


def _first(mapping: IdMapping, side: str) -> int:
    return mapping.container_id if side == "container" else mapping.host_id


def _check_allowed(kind: str, mappings, caller_id: int, caller_name: str | None, ranges: list[SubIdRange]) -> None:
    """Each host range must lie inside the caller's own ID or inside one subordinate range."""
    allowed = [SubIdRange(caller_id, 1), *ranges]
    for m in mappings:
        if any(r.start <= m.host_id and m.host_id + m.size - 1 <= r.end for r in allowed):
            continue
        who = f"user {caller_name} ({kind} {caller_id})" if caller_name else f"{kind} {caller_id}"
        if ranges:
            may = f"{kind} {caller_id} and /etc/sub{kind} ranges " + ", ".join(f"{r.start}-{r.end}" for r in ranges)
        else:
            may = f"{kind} {caller_id} only (no /etc/sub{kind} range)"
        raise IdMapError(f"{kind}Mappings entry {m} is outside what {who} may map: {may}; "
                         f"change the mapping or add a range with usermod --add-sub{kind}s")


def _automatic_plan(caller: dict, caller_name: str | None, ranges: dict, helpers: dict) -> IdMapPlan:
    """The caller's ID as container root, then its subordinate ranges from container ID 1 on
    (podman's rootless default). Without ranges or helpers: the caller's ID alone, with a
    warning, because a container with one ID still runs most images."""
    problems, fixes = [], []
    no_helper = [f"new{kind}map" for kind in KINDS if not helpers[kind]]
    if no_helper:
        problems.append(f"{' and '.join(no_helper)} not found (Debian package uidmap)")
        fixes.append("install uidmap")
    no_range = [kind for kind in KINDS if not ranges[kind]]
    if no_range:
        who = caller_name or f"uid {caller['uid']}"
        problems.append(f"no {' or '.join(f'/etc/sub{kind}' for kind in no_range)} range for {who}")
        fixes.append(_range_fix(no_range, caller_name, caller["uid"]))
    if problems:
        single = {kind: (IdMapping(0, caller[kind], 1),) for kind in KINDS}
        warning = (f"{'; '.join(problems)}: only uid {caller['uid']} and gid {caller['gid']} are mapped "
                   f"(as root); {' and '.join(fixes)}")
        return IdMapPlan(single["uid"], single["gid"], "direct", True, (warning,))
    warnings: list[str] = []
    maps = {kind: _stack(kind, caller[kind], ranges[kind], warnings) for kind in KINDS}
    return IdMapPlan(maps["uid"], maps["gid"], "helper", False, tuple(warnings))


def _range_fix(kinds: list[str], caller_name: str | None, caller_uid: int) -> str:
    example = "100000-165535"  # podman's documented example; any range no other user has
    if caller_name:
        flags = " ".join(f"--add-sub{kind}s {example}" for kind in kinds)
        return f"add {'one' if len(kinds) == 1 else 'them'} with usermod {flags} {caller_name}"
    files = " and ".join(f"/etc/sub{kind}" for kind in kinds)
    return f"add a line {caller_uid}:100000:65536 to {files}"


def _stack(kind: str, caller_id: int, ranges: list[SubIdRange], warnings: list[str]) -> tuple[IdMapping, ...]:
    """caller_id -> 0, then the ranges one after another. A range that overlaps one already
    taken (the same line by name and by uid, say) would make the kernel refuse the whole map:
    it is left out, with a warning unless it is an exact repeat."""
    mappings = [IdMapping(0, caller_id, 1)]
    taken = [SubIdRange(caller_id, 1)]
    next_id = 1
    for r in ranges:
        if r in taken:
            continue
        if any(r.start <= t.end and t.start <= r.end for t in taken):
            warnings.append(f"/etc/sub{kind} range {r.start}-{r.end} overlaps {kind} {caller_id} or an "
                            "earlier range: left out of the map")
            continue
        if next_id + r.count - 1 > MAX_ID:
            warnings.append(f"/etc/sub{kind} range {r.start}-{r.end} does not fit below container ID "
                            f"{MAX_ID}: left out of the map")
            continue
        mappings.append(IdMapping(next_id, r.start, r.count))
        taken.append(r)
        next_id += r.count
    return tuple(mappings)
