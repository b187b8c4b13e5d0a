"""The unit properties of a container's scope, pure: what StartTransientUnit and
SetUnitProperties receive, as (name, (D-Bus signature, value)) pairs, jeepney's variant form.

The resource properties are runc's (systemd/v2.go): systemd would otherwise reset the files
we write on its next reload. `org.systemd.property.NAME` annotations are passed through as
runc passes them: the value is GVariant text (`uint64 1000`, `'text'`, `true`), and a NAME
ending in `Sec` (not `USec`) is converted to NAME-USec in microseconds.
"""

from rootless.errors import ConfigError
from rootless.process import attrs
from rootless.cgroups.resources import MAX_UINT64

ANNOTATION_PREFIX = "org.systemd.property."


def base(container_id: str, slice_: str, pid: int) -> list:
    return [
        ("Description", ("s", f"rootless container {container_id}")),
        ("Slice", ("s", slice_)),
        ("Delegate", ("b", True)),
        ("PIDs", ("au", [pid])),
        ("DefaultDependencies", ("b", False)),
        ("MemoryAccounting", ("b", True)),
        ("CPUAccounting", ("b", True)),
        ("IOAccounting", ("b", True)),
        ("TasksAccounting", ("b", True)),
    ]


def _bytes(text: str) -> int:
    return MAX_UINT64 if text == "max" else int(text)


def range_to_bits(text: str) -> bytes:
    """A cpuset list ("0-3,8") as systemd's AllowedCPUs byte array: bit N of byte N/8."""
    bits = 0
    for n in attrs.id_list(text, "linux.resources.cpu"):
        bits |= 1 << n
    size = max((bits.bit_length() + 7) // 8, 1)
    return bits.to_bytes(size, "little")


def cpu_quota_per_sec(quota: int, period: int) -> int:
    """runc's CPUQuotaPerSecUSec: the quota per second, rounded up to systemd's 10 ms."""
    per_sec = quota * 1_000_000 // period
    if per_sec % 10_000:
        per_sec = (per_sec // 10_000 + 1) * 10_000
    return per_sec


def for_writes(writes) -> list:
    """The properties systemd knows for the files we write."""
    props = []
    for w in writes:
        if w.file == "memory.max":
            props.append(("MemoryMax", ("t", _bytes(w.value))))
        elif w.file == "memory.low":
            props.append(("MemoryLow", ("t", _bytes(w.value))))
        elif w.file == "memory.swap.max":
            props.append(("MemorySwapMax", ("t", _bytes(w.value))))
        elif w.file == "pids.max":
            props.append(("TasksMax", ("t", _bytes(w.value))))
        elif w.file == "cpu.weight":
            props.append(("CPUWeight", ("t", int(w.value))))
        elif w.file == "cpu.max":
            quota, _, period = w.value.partition(" ")
            period_us = int(period) if period else 100_000
            if period:
                props.append(("CPUQuotaPeriodUSec", ("t", period_us)))
            props.append(("CPUQuotaPerSecUSec",
                          ("t", MAX_UINT64 if quota == "max" else cpu_quota_per_sec(int(quota), period_us))))
        elif w.file == "cpuset.cpus":
            props.append(("AllowedCPUs", ("ay", range_to_bits(w.value))))
        elif w.file == "cpuset.mems":
            props.append(("AllowedMemoryNodes", ("ay", range_to_bits(w.value))))
    return props


_TYPES = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
          "int64": "x", "uint64": "t", "double": "d", "string": "s", "objectpath": "o"}


def parse_variant(text: str) -> tuple[str, object]:
    """GVariant text as runc's godbus ParseVariant reads the common cases: an optional type
    word (`uint64 5`), booleans, numbers (int32 by default, double with a point), quoted
    strings, and arrays of strings (`['a', 'b']`)."""
    text = text.strip()
    word, _, rest = text.partition(" ")
    if word in _TYPES and rest:
        sig, value = parse_variant(rest)
        wanted = _TYPES[word]
        if wanted in "ynqiuxt" and sig == "i":
            return wanted, value
        if wanted == "d" and sig in "id":
            return "d", float(value)
        if wanted == sig:
            return sig, value
        raise ValueError(f"{rest!r} is not a {word}")
    if text in ("true", "false"):
        return "b", text == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return "s", text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        items = [i.strip() for i in text[1:-1].split(",") if i.strip()]
        values = [parse_variant(i) for i in items]
        if any(sig != "s" for sig, _ in values):
            raise ValueError("only arrays of strings are supported")
        return "as", [v for _, v in values]
    try:
        return "i", int(text)
    except ValueError:
        pass
    try:
        return "d", float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a D-Bus value (e.g. uint64 5, 'text', true)") from None


def from_annotations(annotations: dict) -> list:
    props = []
    for key, text in (annotations or {}).items():
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        name = key[len(ANNOTATION_PREFIX):]
        if not name.isascii() or not name.isalnum() or not name[:1].isupper():
            raise ConfigError(f"annotation {key}: {name!r} is not a systemd property name")
        try:
            sig, value = parse_variant(text)
        except ValueError as err:
            raise ConfigError(f"annotation {key}: {err}") from None
        if name.endswith("Sec") and not name.endswith("USec"):
            if sig not in "ynqiuxtd" or isinstance(value, bool) or value < 0:
                raise ConfigError(f"annotation {key}: {text!r} is not a number of seconds")
            name, sig, value = name[:-3] + "USec", "t", int(value * 1_000_000)
        props.append((name, (sig, value)))
    return props
