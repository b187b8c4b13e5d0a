"""`update`: change the limits of a running container, with runc's flags or an OCI
LinuxResources JSON file (`--resources FILE`, `-` for stdin; podman passes a file). The new
values are saved in state.json and in the saved config.json, so `exec` and later calls see
them."""

import json
import sys

from rootless import state
from rootless.errors import RootlessError, UsageError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str, flag: str) -> int:
    """docker's RAMInBytes, as runc reads --memory: 64m, 1g, 512k, 1048576; -1 for no limit."""
    raw = text.strip().lower()
    if raw == "-1":
        return -1
    for suffix in ("ib", "b"):
        if raw.endswith(suffix) and raw[:-len(suffix)][-1:].isalpha():
            raw = raw[:-len(suffix)]
            break
    number, unit = raw, ""
    if raw and raw[-1].isalpha():
        number, unit = raw[:-1], raw[-1]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or value < 0:
        raise UsageError(f"invalid value {text!r} for --{flag}: expected bytes such as 67108864, 64m or 1g")
    return int(value * _UNITS[unit])


def _integer(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"invalid value {text!r} for --{flag}: expected an integer") from None


# (flag dest, section, field, parser)
FLAGS = (
    ("memory", "memory", "limit", parse_bytes),
    ("memory_swap", "memory", "swap", parse_bytes),
    ("memory_reservation", "memory", "reservation", parse_bytes),
    ("kernel_memory", "memory", "kernel", parse_bytes),
    ("kernel_memory_tcp", "memory", "kernelTCP", parse_bytes),
    ("cpu_share", "cpu", "shares", _integer),
    ("cpu_quota", "cpu", "quota", _integer),
    ("cpu_period", "cpu", "period", _integer),
    ("cpu_rt_period", "cpu", "realtimePeriod", _integer),
    ("cpu_rt_runtime", "cpu", "realtimeRuntime", _integer),
    ("cpu_idle", "cpu", "idle", _integer),
    ("cpuset_cpus", "cpu", "cpus", None),
    ("cpuset_mems", "cpu", "mems", None),
    ("pids_limit", "pids", "limit", _integer),
    ("blkio_weight", "blockIO", "weight", _integer),
)


def from_flags(options: dict) -> dict:
    """LinuxResources from runc's update flags: only the flags given."""
    new: dict = {}
    for dest, section, field, parse in FLAGS:
        text = options.get(dest)
        if text is None:
            continue
        flag = dest.replace("_", "-")
        new.setdefault(section, {})[field] = parse(text, flag) if parse else text
    for dest in ("l3_cache_schema", "mem_bw_schema"):
        if options.get(dest) is not None:
            raise UsageError(f"--{dest.replace('_', '-')}: Intel RDT is not supported by rootless")
    return new


def read_resources(path: str) -> dict:
    try:
        with (sys.stdin if path == "-" else open(path)) as f:
            value = json.loads(f.read())
    except OSError as err:
        raise UsageError(f"--resources {path}: {err.strerror}") from None
    except ValueError as err:  # UnicodeDecodeError too
        raise UsageError(f"--resources {path}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise UsageError(f"--resources {path}: expected a JSON object (OCI LinuxResources)")
    return value


def run(ctx, parsed) -> int:
    o = parsed.options
    # runc: with --resources, every other flag is ignored.
    new = read_resources(o["resources"]) if o["resources"] else from_flags(o)
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        record = cdir.load()
        if state.status(cdir, record) == "stopped":
            raise RootlessError(f"cannot update container {cdir.id}: it is stopped")
        from rootless.cgroups import manager
        merged, not_applied = manager.update(record, new)
        record["resources"] = merged
        cdir.save(record)
        config = cdir.load_config()
        config.setdefault("linux", {})["resources"] = merged
        cdir.save_config(config)
    from rootless.cgroups import resources
    inapplicable = resources.translate(new).inapplicable
    message = manager.warning(not_applied, manager.NOT_DELEGATED.format(path=record["cgroup"]["path"]), inapplicable)
    if message:
        ctx.warn(message)
    return 0
