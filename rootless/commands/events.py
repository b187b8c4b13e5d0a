"""`events`: runc's event stream of a container, one JSON object per line: its cgroup's
statistics every --interval (`{"type":"stats","id":ID,"data":{...}}`) and an `oom` event
each time the kernel's OOM killer kills in it (memory.events' oom_kill grows). With --stats,
one statistics line and exit. Ends when the container stops."""

import json
import sys
import time

from rootless import state
from rootless.errors import RootlessError, UsageError

_DURATION_UNITS = (("ms", 0.001), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for what a user types: 5s, 100ms, 1m30s, 1.5s."""
    rest, total = text.strip(), 0.0
    if not rest:
        raise UsageError("--interval: empty duration")
    while rest:
        number = ""
        while rest and (rest[0].isdigit() or rest[0] == "."):
            number, rest = number + rest[0], rest[1:]
        unit = next((u for u, _ in _DURATION_UNITS if rest.startswith(u)), None)
        if not number or unit is None:
            raise UsageError(f"invalid --interval {text!r}: expected a duration such as 5s or 500ms")
        total += float(number) * dict(_DURATION_UNITS)[unit]
        rest = rest[len(unit):]
    if total <= 0:
        raise UsageError(f"invalid --interval {text!r}: must be positive")
    return total


def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run(ctx, parsed) -> int:
    interval = parse_duration(parsed.options["interval"])
    cdir = state.ContainerDir(ctx.root, parsed.args["id"])
    record = cdir.load()
    if state.status(cdir, record) == "stopped":
        raise RootlessError(f"container {cdir.id} is not running")
    from rootless.cgroups import manager, stats
    path = manager.path_of(record)
    if path is None:
        raise RootlessError(f"cannot show events of container {cdir.id}: it has no cgroup of its own "
                            f"({manager.none_reason(record)})")
    if parsed.options["stats"]:
        _emit({"type": "stats", "id": cdir.id, "data": stats.collect(path)})
        return 0
    ooms = stats.oom_kills(path)
    next_stats = time.monotonic()
    while state.status(cdir, record) != "stopped":
        now = time.monotonic()
        if now >= next_stats:
            _emit({"type": "stats", "id": cdir.id, "data": stats.collect(path)})
            next_stats = now + interval
        count = stats.oom_kills(path)
        if count > ooms:
            _emit({"type": "oom", "id": cdir.id})
            ooms = count
        time.sleep(min(0.1, max(next_stats - time.monotonic(), 0.01)))
    return 0
