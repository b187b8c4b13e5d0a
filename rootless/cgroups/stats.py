"""`events`: the container's cgroup v2 statistics in runc's JSON (runc's types/events.go, filled
as runc's fs2 driver fills it), and the OOM kills counted in memory.events.

Go's encoding drops fields tagged omitempty when they are zero; the same is done here, so a
client decoding runc's output decodes ours.
"""

import os

from rootless.cgroups import fs
from rootless.cgroups.resources import MAX_UINT64


def _flat(text: str) -> dict[str, int]:
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            result[key] = int(value)
    return result


def _read(path: str, name: str) -> str | None:
    try:
        return fs.read(path, name)
    except OSError:
        return None


def _number(text: str | None) -> int:
    """A single-value file: "max" is the largest uint64, as runc reports it."""
    if text is None:
        return 0
    text = text.strip()
    return MAX_UINT64 if text == "max" else int(text or 0)


def _nonzero(entries: dict) -> dict:
    return {k: v for k, v in entries.items() if v}


def cpu(cpu_stat: str | None) -> dict:
    stat = _flat(cpu_stat or "")
    usage = _nonzero({"total": stat.get("usage_usec", 0) * 1000})
    usage["kernel"] = stat.get("system_usec", 0) * 1000
    usage["user"] = stat.get("user_usec", 0) * 1000
    throttling = _nonzero({"periods": stat.get("nr_periods", 0), "throttled_periods": stat.get("nr_throttled", 0),
                           "throttled_time": stat.get("throttled_usec", 0) * 1000})
    return {"usage": usage, "throttling": throttling}


def memory(path: str) -> dict:
    raw = _flat(_read(path, "memory.stat") or "")
    current = _number(_read(path, "memory.current"))
    limit = _number(_read(path, "memory.max"))
    events = _flat(_read(path, "memory.events") or "")
    usage = {"limit": limit, **_nonzero({"usage": current, "max": _number(_read(path, "memory.peak"))}),
             "failcnt": events.get("max", 0)}
    result = _nonzero({"cache": raw.get("file", 0)})
    result["usage"] = usage
    swap_text = _read(path, "memory.swap.current")
    if swap_text is not None:
        # runc reports swap as memory+swap, the v1 meaning its clients expect.
        swap_limit = _number(_read(path, "memory.swap.max"))
        result["swap_usage"] = {"limit": min(MAX_UINT64, swap_limit + limit) if MAX_UINT64 not in (swap_limit, limit)
                                else MAX_UINT64, **_nonzero({"usage": _number(swap_text) + current}), "failcnt": 0}
    if raw:
        result["raw"] = raw
    return result


def pids(path: str) -> dict:
    limit = _read(path, "pids.max")
    return _nonzero({"current": _number(_read(path, "pids.current")),
                     "limit": 0 if limit is None or limit.strip() == "max" else _number(limit)})


def blkio(io_stat: str | None) -> dict:
    service_bytes, serviced = [], []
    for line in (io_stat or "").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        for op, key in (("Read", "rbytes"), ("Write", "wbytes")):
            service_bytes.append(_nonzero({"major": int(major), "minor": int(minor), "op": op,
                                           "value": int(values.get(key, 0))}))
        for op, key in (("Read", "rios"), ("Write", "wios")):
            serviced.append(_nonzero({"major": int(major), "minor": int(minor), "op": op,
                                      "value": int(values.get(key, 0))}))
    return _nonzero({"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced})


def hugetlb(path: str) -> dict:
    result = {}
    try:
        names = os.listdir(path)
    except OSError:
        return result
    for name in sorted(names):
        if name.startswith("hugetlb.") and name.endswith(".current") and ".rsvd." not in name:
            size = name[len("hugetlb."):-len(".current")]
            events = _flat(_read(path, f"hugetlb.{size}.events") or "")
            result[size] = {**_nonzero({"usage": _number(_read(path, name))}), "failcnt": events.get("max", 0)}
    return result


def collect(path: str) -> dict:
    """runc's Stats for the cgroup at `path`."""
    return {
        "cpu": cpu(_read(path, "cpu.stat")),
        "memory": memory(path),
        "pids": pids(path),
        "blkio": blkio(_read(path, "io.stat")),
        "hugetlb": hugetlb(path),
        "intel_rdt": {},
        "network_interfaces": None,
    }


def oom_kills(path: str) -> int:
    return fs.events(path, "memory.events").get("oom_kill", 0)
