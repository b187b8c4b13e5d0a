"""OCI LinuxResources in cgroup v2 terms: pure functions, no file is touched here.

translate() turns config.json's `linux.resources` (or `update`'s) into a list of writes, each
naming the OCI fields it comes from, so that a driver can say exactly which limits it could
not apply (`memory.limit, pids.limit`). The conversions are runc's (libcontainer/cgroups/fs2
and utils.go, runc 1.1) unless a comment says otherwise:

- a value of 0 means "not set" for memory, cpu shares/quota/period and block I/O weight, and
  -1 means no limit ("max");
- memory.swap is memory+swap in OCI (cgroup v1's memsw) but swap alone in v2: swap - limit;
- cpu.shares (2..262144) becomes cpu.weight (1..10000) by the linear conversion crun
  documents and runc 1.1 uses: 1 + ((shares - 2) * 9999) / 262142;
- blockIO.weight (10..1000) goes to io.bfq.weight as it is when the BFQ scheduler offers that
  file, else to io.weight as 1 + ((weight - 10) * 9999) / 990.

Fields that cgroup v2 has no file for (kernel memory, swappiness, disableOOMKiller, realtime
CPU, leaf weights, net_cls/net_prio) are reported as not applicable, never silently dropped.
"""

from rootless.errors import ConfigError

MAX_UINT64 = 2**64 - 1


class Write:
    """One value for one file of the container's cgroup. names: the OCI fields it carries;
    fallback: (file, value) to use when `file` does not exist (io.bfq.weight -> io.weight)."""

    __slots__ = ("names", "file", "value", "fallback")

    def __init__(self, names: tuple[str, ...], file: str, value: str, fallback: tuple[str, str] | None = None):
        self.names, self.file, self.value, self.fallback = names, file, value, fallback

    @property
    def controller(self) -> str | None:
        """The controller that must be enabled for the file to exist (None for cgroup.*)."""
        prefix = self.file.partition(".")[0]
        return None if prefix == "cgroup" else prefix

    def __repr__(self) -> str:
        return f"Write({self.names!r}, {self.file!r}, {self.value!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Write) and (self.names, self.file, self.value, self.fallback) == \
            (other.names, other.file, other.value, other.fallback)


class Translation:
    """writes: in the order to apply them; inapplicable: OCI fields v2 cannot express, with
    why (for the one warning line)."""

    def __init__(self):
        self.writes: list[Write] = []
        self.inapplicable: list[str] = []

    def add(self, names, file: str, value, fallback=None) -> None:
        names = (names,) if isinstance(names, str) else tuple(names)
        self.writes.append(Write(names, file, str(value), fallback))

    @property
    def names(self) -> list[str]:
        """Every OCI field asked for, once, in order."""
        seen: list[str] = []
        for name in [n for w in self.writes for n in w.names] + self.inapplicable:
            if name not in seen:
                seen.append(name)
        return seen


def num(value: int) -> str:
    """runc's numToStr: -1 is "max"; callers skip 0 ("not set") themselves."""
    return "max" if value == -1 else str(value)


def _int(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"linux.resources.{field}: {value!r} is not an integer")
    return value


def _limit(value, field: str) -> int:
    value = _int(value, field)
    if value < -1:
        raise ConfigError(f"linux.resources.{field}: {value} is not a limit: use -1 for no limit")
    return value


def swap_v2(swap: int, memory: int) -> int:
    """runc's ConvertMemorySwapToCgroupV2Value: OCI's memory+swap to v2's swap alone.
    Returns -1 for max, 0 for "not set" (the caller writes 0 when swap == memory)."""
    if memory == -1 and swap == 0:
        return -1  # unlimited memory and no swap asked: both unlimited, as cgroup v1 does
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise ConfigError("linux.resources.memory.swap: a swap limit needs a memory limit")
    if swap < memory:
        raise ConfigError(f"linux.resources.memory.swap ({swap}) is below memory.limit ({memory}): "
                          "swap is memory+swap, so it must be at least the memory limit")
    return swap - memory


def shares_to_weight(shares: int) -> int:
    """cpu.shares (cgroup v1, 2..262144) to cpu.weight (1..10000); Go's truncating division."""
    if shares == 0:
        return 0
    weight = 1 + int((shares - 2) * 9999 / 262142)
    return min(max(weight, 1), 10000)


def blkio_to_io_weight(weight: int) -> int:
    """blockIO.weight (10..1000) to io.weight (1..10000)."""
    if weight == 0:
        return 0
    return min(max(1 + int((weight - 10) * 9999 / 990), 1), 10000)


def _memory(t: Translation, memory: dict) -> None:
    limit = _limit(memory.get("limit", 0) or 0, "memory.limit")
    swap = _limit(memory.get("swap", 0) or 0, "memory.swap")
    converted = swap_v2(swap, limit)
    if converted != 0 or swap > 0:
        # swap == limit means no swap at all: "0" (runc writes it too).
        t.add("memory.swap" if swap else "memory.limit", "memory.swap.max", num(converted))
    if limit != 0:
        t.add("memory.limit", "memory.max", num(limit))
    reservation = _limit(memory.get("reservation", 0) or 0, "memory.reservation")
    if reservation != 0:
        t.add("memory.reservation", "memory.low", num(reservation))
    for field in ("kernel", "kernelTCP", "swappiness"):
        if memory.get(field) is not None:
            t.inapplicable.append(f"memory.{field}")
    if memory.get("disableOOMKiller"):
        t.inapplicable.append("memory.disableOOMKiller")


def _pids(t: Translation, pids: dict) -> None:
    if "limit" not in pids or pids["limit"] is None:
        return
    limit = _int(pids["limit"], "pids.limit")
    # The spec: 0 is a valid limit (no new task at all); negative means no limit.
    t.add("pids.limit", "pids.max", "max" if limit < 0 else limit)


def _cpu(t: Translation, cpu: dict) -> None:
    shares = _int(cpu.get("shares", 0) or 0, "cpu.shares")
    if shares:
        t.add("cpu.shares", "cpu.weight", shares_to_weight(shares))
    quota = _int(cpu.get("quota", 0) or 0, "cpu.quota")
    period = _int(cpu.get("period", 0) or 0, "cpu.period")
    if quota or period:
        value = str(quota) if quota > 0 else "max"
        if period:
            value += f" {period}"
        t.add(tuple(n for n, v in (("cpu.quota", quota), ("cpu.period", period)) if v), "cpu.max", value)
    if cpu.get("burst") is not None:
        t.add("cpu.burst", "cpu.max.burst", _int(cpu["burst"], "cpu.burst"))
    if cpu.get("idle") is not None:
        t.add("cpu.idle", "cpu.idle", _int(cpu["idle"], "cpu.idle"))
    if cpu.get("cpus"):
        t.add("cpu.cpus", "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        t.add("cpu.mems", "cpuset.mems", cpu["mems"])
    for field in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(field):
            t.inapplicable.append(f"cpu.{field}")


_THROTTLES = (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
              ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops"))


def _device(entry: dict, field: str) -> str:
    return f"{_int(entry.get('major'), field + '.major')}:{_int(entry.get('minor'), field + '.minor')}"


def _block_io(t: Translation, block_io: dict) -> None:
    weight = _int(block_io.get("weight", 0) or 0, "blockIO.weight")
    if weight:
        t.add("blockIO.weight", "io.bfq.weight", weight, ("io.weight", str(blkio_to_io_weight(weight))))
    if block_io.get("leafWeight"):
        t.inapplicable.append("blockIO.leafWeight")
    for entry in block_io.get("weightDevice") or ():
        device = _device(entry, "blockIO.weightDevice")
        if entry.get("weight"):
            w = _int(entry["weight"], "blockIO.weightDevice.weight")
            t.add("blockIO.weightDevice", "io.bfq.weight", f"{device} {w}",
                  ("io.weight", f"{device} {blkio_to_io_weight(w)}"))
        if entry.get("leafWeight"):
            t.inapplicable.append("blockIO.weightDevice.leafWeight")
    for field, key in _THROTTLES:
        for entry in block_io.get(field) or ():
            rate = _int(entry.get("rate", 0), f"blockIO.{field}.rate")
            t.add(f"blockIO.{field}", "io.max", f"{_device(entry, 'blockIO.' + field)} {key}={rate or 'max'}")


def _hugetlb(t: Translation, limits: list) -> None:
    for entry in limits:
        size = entry.get("pageSize", "")
        if not size or "/" in size or "." in size:
            raise ConfigError(f"linux.resources.hugepageLimits: bad pageSize {size!r} (e.g. 2MB)")
        t.add("hugepageLimits", f"hugetlb.{size}.max", _int(entry.get("limit"), "hugepageLimits.limit"))


def _rdma(t: Translation, rdma: dict) -> None:
    for device, limits in rdma.items():
        handles = limits.get("hcaHandles")
        objects = limits.get("hcaObjects")
        t.add("rdma", "rdma.max", f"{device} hca_handle={'max' if handles is None else handles} "
                                  f"hca_object={'max' if objects is None else objects}")


def check_unified_key(key: str) -> None:
    """A unified key names a file of the container's own cgroup, nothing above or below it."""
    if not key or "/" in key or key.startswith(".") or "." not in key or "\0" in key:
        raise ConfigError(f"linux.resources.unified: {key!r} is not a file of the container's cgroup "
                          "(expected a name such as memory.high)")
    if key in ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill", "cgroup.freeze"):
        raise ConfigError(f"linux.resources.unified: {key} is managed by the runtime, not a limit")


_SECTIONS = (("memory", _memory), ("pids", _pids), ("cpu", _cpu), ("blockIO", _block_io),
             ("hugepageLimits", _hugetlb), ("rdma", _rdma))


def translate(resources: dict | None) -> Translation:
    """config.json's linux.resources (or update's LinuxResources) as cgroup v2 writes."""
    t = Translation()
    resources = resources or {}
    for section, convert in _SECTIONS:
        if resources.get(section):
            convert(t, resources[section])
    if resources.get("network"):
        t.inapplicable.append("network")  # net_cls and net_prio exist in cgroup v1 only
    # runc writes unified last: a key wins over the field it overlaps.
    for key, value in (resources.get("unified") or {}).items():
        check_unified_key(key)
        t.add(f"unified.{key}", key, value)
    return t


def merge(old: dict | None, new: dict | None) -> dict:
    """update's resources over the saved ones, field by field (runc's `update` keeps every
    field it is not given)."""
    result = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (old or {}).items()}
    for key, value in (new or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and key != "rdma":
            result[key].update(value)
        else:
            result[key] = value
    return result
