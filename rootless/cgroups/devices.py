"""linux.resources.devices as cgroup v2 enforces them: an eBPF program of type
BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup, which the kernel runs on every
open and mknod of a device node. Pure but for attach(); runc's and crun's way, instruction for
instruction (runc 1.1's libcontainer/cgroups/ebpf/devicefilter, itself from crun's ebpf.c):

1. The rules are folded as cgroup v1's devices controller would hold them (runc's devices
   Emulator): an `a` rule resets the list and sets the default (allow-all or deny-all), every
   other rule adds or removes access on one (type, major, minor) exception. A rule that would
   punch a hole into a wildcard exception is refused, as runc refuses it (v1 would ignore it
   silently). After the config's rules come the ones runc appends: the default nodes get rwm
   (but one that linux.devices lists again: runc's createDevices drops that default, rule
   included), and mknod of any node is allowed (mknod is not open). linux.devices' own nodes
   get no rule, as in runc (libcontainer/specconv CreateCgroupConfig): a client that wants
   them opened allows them in linux.resources.devices, as podman and containerd do.
2. The exceptions, sorted by (major, minor, type) with wildcards first, become one block each:
   match type, access (unless rwm), major and minor (unless wildcards), then return the
   exception's verdict; the last block returns the default.

Who can load it: only a process with CAP_SYS_ADMIN (CAP_BPF) in the initial user namespace. A
rootless container cannot have it; what it can open is then what the host's permissions allow
on the nodes it is given (bind mounts, as mknod is refused in a user namespace):
unenforced() names those that the rules would have denied.
"""

from rootless.errors import ConfigError

# struct bpf_cgroup_dev_ctx's access_type: the type in the low 16 bits, the access above.
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACCESS = {"r": ACC_READ, "w": ACC_WRITE, "m": ACC_MKNOD}
RWM = ACC_READ | ACC_WRITE | ACC_MKNOD
WILDCARD = -1
LICENSE = "Apache"  # runc's and crun's programs carry it; the kernel wants a license string

# What runc 1.1 allows every container after the config's rules (specconv.AllowedDevices):
# mknod of anything, the default nodes, ptmx and the ptys, tun/tap (1.1 has it; 1.2.0 took it
# out and 1.2.1 put it back).
# The node's path, where runc's entry has one (a linux.devices entry for it drops the rule).
_ALWAYS = [(None, "c", WILDCARD, WILDCARD, "m"), (None, "b", WILDCARD, WILDCARD, "m"),
           ("/dev/null", "c", 1, 3, "rwm"), ("/dev/random", "c", 1, 8, "rwm"), ("/dev/full", "c", 1, 7, "rwm"),
           ("/dev/tty", "c", 5, 0, "rwm"), ("/dev/zero", "c", 1, 5, "rwm"), ("/dev/urandom", "c", 1, 9, "rwm"),
           (None, "c", 136, WILDCARD, "rwm"), (None, "c", 5, 2, "rwm"), (None, "c", 10, 200, "rwm")]


def _access(text: str, where: str) -> int:
    bits = 0
    for char in text:
        if char not in _ACCESS:
            raise ConfigError(f"{where}.access {text!r}: only r, w and m are device access modes")
        bits |= _ACCESS[char]
    return bits


def _number(value, where: str) -> int:
    if value is None:
        return WILDCARD
    if isinstance(value, bool) or not isinstance(value, int) or not WILDCARD <= value <= 0xFFFFFFFF:
        raise ConfigError(f"{where}: {value!r} is not a device number (0 to 4294967295, or absent for any)")
    return value


def parse(rules, where: str = "linux.resources.devices") -> list[tuple[bool, str, int, int, int]]:
    """OCI rules as (allow, type, major, minor, access bits); type "a" for every device."""
    parsed = []
    for index, rule in enumerate(rules or ()):
        at = f"{where}[{index}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{at}: a device rule is an object")
        kind = rule.get("type") or "a"
        if kind not in ("a", "b", "c"):
            raise ConfigError(f"{at}.type {kind!r}: a device rule's type is a, b or c")
        access = rule.get("access")
        parsed.append((rule.get("allow") is True, kind, _number(rule.get("major"), f"{at}.major"),
                       _number(rule.get("minor"), f"{at}.minor"),
                       RWM if access is None else _access(access, at)))
    return parsed


class Rules:
    """The rules folded as cgroup v1 would hold them: a default and exceptions (key (type,
    major, minor) -> access bits), each exception the opposite of the default."""

    def __init__(self):
        self.default_allow = False
        self.exceptions: dict[tuple[str, int, int], int] = {}

    def apply(self, allow: bool, kind: str, major: int, minor: int, access: int) -> None:
        if kind == "a":  # whatever its numbers and access: v1 resets the list (runc's Emulator)
            self.default_allow, self.exceptions = allow, {}
            return
        key = (kind, major, minor)
        if allow != self.default_allow:
            self.exceptions[key] = self.exceptions.get(key, 0) | access
            return
        for partial in ((kind, WILDCARD, minor), (kind, major, WILDCARD), (kind, WILDCARD, WILDCARD)):
            if partial != key and self.exceptions.get(partial, 0) & access:
                raise ConfigError(f"device rule {_show(allow, key, access)} cannot punch a hole in the wildcard rule "
                                  f"{_show(not allow, partial, self.exceptions[partial])}: cgroup v1 ignores it, "
                                  "so runc and rootless refuse it (list the devices one by one)")
        left = self.exceptions.get(key, 0) & ~access
        if left:
            self.exceptions[key] = left
        else:
            self.exceptions.pop(key, None)

    def ordered(self) -> list[tuple[str, int, int, int]]:
        return [(kind, major, minor, access) for (kind, major, minor), access in
                sorted(self.exceptions.items(), key=lambda e: (e[0][1], e[0][2], e[0][0]))]

    def allows(self, kind: str, major: int, minor: int, access: int) -> bool:
        """What the program answers for one access to one node."""
        for k, ma, mi, acc in self.ordered():
            if k == kind and ma in (WILDCARD, major) and mi in (WILDCARD, minor) and access & acc == access:
                return not self.default_allow
        return self.default_allow


def listed_paths(linux: dict) -> set:
    """The paths linux.devices lists, as runc compares them with its defaults' (as written)."""
    return {d.get("path") for d in linux.get("devices") or () if isinstance(d, dict)}


def fold(config_rules, listed=(), defaults: bool = True) -> Rules:
    """The container's rules: the config's, then what runc appends (the default nodes, rwm,
    but those whose path linux.devices lists; mknod of anything). listed: the paths of
    linux.devices."""
    folded = Rules()
    for rule in parse(config_rules):
        folded.apply(*rule)
    if not defaults:
        return folded
    for path, kind, major, minor, access in _ALWAYS:
        if path is None or path not in listed:
            folded.apply(True, kind, major, minor, _access(access, "device"))
    return folded


def rules_of(linux: dict) -> Rules:
    """The container's rules from its config's linux section (fold of its resources.devices,
    with the paths linux.devices lists)."""
    return fold((linux.get("resources") or {}).get("devices"), listed_paths(linux))


# The program, as (operation, dst, src, offset or label, immediate) with labels for jumps; the
# names are cilium/ebpf's (what runc's tests print), so a listing compares with runc's.

def program(rules: Rules) -> list[tuple]:
    insts: list[tuple] = [
        ("LdXMemW", 2, 1, 0, 0), ("AndImm32", 2, 0, 0, 0xFFFF),  # r2 = type
        ("LdXMemW", 3, 1, 0, 0), ("RShImm32", 3, 0, 0, 16),      # r3 = access
        ("LdXMemW", 4, 1, 4, 0),                                 # r4 = major
        ("LdXMemW", 5, 1, 8, 0),                                 # r5 = minor
    ]
    for block, (kind, major, minor, access) in enumerate(rules.ordered()):
        following = f"block-{block + 1}"
        insts.append(("JNEImm", 2, 0, following, DEV_BLOCK if kind == "b" else DEV_CHAR))
        if access != RWM:  # the access asked must lie within the exception's: (r3 & access) == r3
            insts += [("MovReg32", 1, 3, 0, 0), ("AndImm32", 1, 0, 0, access), ("JNEReg", 1, 3, following, 0)]
        if major != WILDCARD:
            insts.append(("JNEImm", 4, 0, following, major))
        if minor != WILDCARD:
            insts.append(("JNEImm", 5, 0, following, minor))
        insts += [("MovImm32", 0, 0, 0, 0 if rules.default_allow else 1), ("Exit", 0, 0, 0, 0)]
    insts += [("MovImm32", 0, 0, 0, 1 if rules.default_allow else 0), ("Exit", 0, 0, 0, 0)]
    return insts


def _starts(insts: list[tuple]) -> dict[str, int]:
    """label -> index: block-N begins at the N-th type check, the last block after them all."""
    starts, block = {}, 0
    for index, inst in enumerate(insts):
        if inst[0] == "JNEImm" and inst[1] == 2:
            starts[f"block-{block}"] = index
            block += 1
    starts[f"block-{block}"] = len(insts) - 2
    return starts


_OPCODES = {  # BPF class | op | source
    "LdXMemW": 0x61, "AndImm32": 0x54, "RShImm32": 0x74, "MovReg32": 0xBC, "MovImm32": 0xB4,
    "JNEImm": 0x55, "JNEReg": 0x5D, "Exit": 0x95,
}


def assemble(insts: list[tuple]) -> bytes:
    """struct bpf_insn each: code, dst and src registers in one byte, a 16-bit offset (jumps:
    from the next instruction), a 32-bit immediate; little-endian as the machine."""
    starts = _starts(insts)
    out = bytearray()
    for index, (op, dst, src, offset, imm) in enumerate(insts):
        if isinstance(offset, str):
            offset = starts[offset] - index - 1
        out += bytes((_OPCODES[op], (src << 4) | dst)) + offset.to_bytes(2, "little", signed=True) \
            + (imm & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out)


def listing(insts: list[tuple]) -> list[str]:
    """One line per instruction in cilium/ebpf's words, as runc's devicefilter tests print them."""
    lines = []
    labels = {start: label for label, start in _starts(insts).items()}
    for index, (op, dst, src, offset, imm) in enumerate(insts):
        if index in labels:
            lines.append(f"{labels[index]}:")
        if op == "Exit":
            text = "Exit"
        elif op == "LdXMemW":
            text = f"LdXMemW dst: r{dst} src: r{src} off: {offset} imm: 0"
        elif op == "MovReg32":
            text = f"MovReg32 dst: r{dst} src: r{src}"
        elif op == "JNEImm":
            text = f"JNEImm dst: r{dst} off: -1 imm: {imm} <{offset}>"
        elif op == "JNEReg":
            text = f"JNEReg dst: r{dst} off: -1 src: r{src} <{offset}>"
        else:
            text = f"{op} dst: r{dst} imm: {imm}"
        lines.append(f"{index}: {text}")
    return lines


def _show(allow: bool, key: tuple[str, int, int], access: int) -> str:
    kind, major, minor = key
    number = lambda n: "*" if n == WILDCARD else str(n)  # noqa: E731
    modes = "".join(c for c, bit in _ACCESS.items() if access & bit)
    return f"{'allow' if allow else 'deny'} {kind} {number(major)}:{number(minor)} {modes}"


def bound_nodes(mounts, limit: int = 4096) -> list[tuple[str, str, int, int]]:
    """(path in the container, type, major, minor) of the host's device nodes that bind mounts
    bring in from /dev: a node bound itself, or the nodes of a bound directory (its own
    entries, and one level below, as /dev/dri or /dev/snd). A rootless container's only way to
    device nodes beside linux.devices, which the rules always allow. (Nodes elsewhere on the
    host are not looked for: a scan of every bound volume would cost more than it finds.)"""
    import os
    import stat
    found: list[tuple[str, str, int, int]] = []

    def node(source: str, target: str) -> bool:
        try:
            info = os.stat(source)
        except OSError:
            return False
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            found.append((target, "c" if stat.S_ISCHR(info.st_mode) else "b",
                          os.major(info.st_rdev), os.minor(info.st_rdev)))
        return stat.S_ISDIR(info.st_mode)

    for mount in mounts or ():
        options = (mount.get("options") or ()) if isinstance(mount, dict) else ()
        if not isinstance(mount, dict) or not (mount.get("type") == "bind" or "bind" in options or "rbind" in options):
            continue
        source, target = str(mount.get("source") or ""), str(mount.get("destination") or "")
        real = os.path.realpath(source)
        if not (real == "/dev" or real.startswith("/dev/")) or not node(source, target):
            continue
        for depth_one in _entries(source)[:limit]:
            if node(os.path.join(source, depth_one), os.path.join(target, depth_one)):
                for depth_two in _entries(os.path.join(source, depth_one))[:limit]:
                    node(os.path.join(source, depth_one, depth_two), os.path.join(target, depth_one, depth_two))
    return found


def _entries(path: str) -> list[str]:
    import os
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def unenforced(rules: Rules, nodes) -> list[str]:
    """For a rootless container (no filter): the nodes it is given, as (path, type, major,
    minor), that the rules would keep it from reading or writing."""
    return [f"{path} ({kind} {major}:{minor})" for path, kind, major, minor in nodes
            if not rules.allows(kind, major, minor, ACC_READ | ACC_WRITE)]


def attach(cgroup_path: str, rules: Rules) -> None:
    """Load the program and attach it to the cgroup (BPF_F_ALLOW_MULTI: systemd's own device
    program, when it has one, keeps running beside it; a device is reachable when all allow)."""
    import os
    from rootless.linux import syscalls
    code = assemble(program(rules))
    prog = syscalls.bpf_prog_load_cgroup_device(code, LICENSE, shown=cgroup_path)
    try:
        directory = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            syscalls.bpf_prog_attach_cgroup_device(prog, directory, shown=cgroup_path)
        finally:
            os.close(directory)
    finally:
        os.close(prog)
