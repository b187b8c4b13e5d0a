"""The device filter's program (rootless.cgroups.devices): for each kind of rule, the
instructions runc 1.1 generates for the same rules (its devicefilter tests list them in
cilium/ebpf's words: `listing()` prints ours in the same words), the rule folding of runc's
devices Emulator, the bytes the kernel gets, and what a rootless container is told."""

import struct

import pytest

from rootless.cgroups import devices
from rootless.errors import ConfigError

PROLOGUE = """
0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
1: AndImm32 dst: r2 imm: 65535
2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
3: RShImm32 dst: r3 imm: 16
4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
"""


def listing(rules, **kwargs) -> list[str]:
    return devices.listing(devices.program(devices.fold(rules, defaults=False, **kwargs)))


def expected(body: str) -> list[str]:
    return [line.strip() for line in (PROLOGUE + body).splitlines() if line.strip()]


def verdicts(index: int, block: int, matched: int, default: int) -> str:
    """A last rule's verdict, then the last block's (the default): four instructions."""
    return (f"{index}: MovImm32 dst: r0 imm: {matched}\n{index + 1}: Exit\nblock-{block}:\n"
            f"{index + 2}: MovImm32 dst: r0 imm: {default}\n{index + 3}: Exit")


def rule(allow, kind=None, major=None, minor=None, access="rwm") -> dict:
    entry = {"allow": allow, "access": access}
    for key, value in (("type", kind), ("major", major), ("minor", minor)):
        if value is not None:
            entry[key] = value
    return entry


def test_no_rules_deny_everything() -> None:
    assert listing([]) == expected("block-0:\n6: MovImm32 dst: r0 imm: 0\n7: Exit")


def test_allow_all_accepts_everything() -> None:
    assert listing([rule(True, "a")]) == expected("block-0:\n6: MovImm32 dst: r0 imm: 1\n7: Exit")


@pytest.mark.parametrize("rules, denied", [
    ([rule(True), rule(False, "b", 8, 0)], 0),
    # runc's "weird" case: 8:1 is denied before the reset, so only 8:2 stays denied.
    ([rule(False, "b", 8, 1), rule(True, "a"), rule(False, "b", 8, 2)], 2),
], ids=["allow-all-but-one", "a-resets"])
def test_allow_all_but_one_block_device(rules, denied) -> None:
    assert listing(rules) == expected(f"""
block-0:
6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
7: JNEImm dst: r4 off: -1 imm: 8 <block-1>
8: JNEImm dst: r5 off: -1 imm: {denied} <block-1>
""" + verdicts(9, 1, 0, 1))


def test_runcs_built_in_allow_list() -> None:
    # What runc appends to every container's rules; the exceptions sorted by (major, minor,
    # type), wildcards first; a partial access (m) is checked, rwm is not; a wildcard minor
    # (the ptys, 136) has no minor check.
    blocks = [("1", None, None, "1"), ("2", None, None, "1"), ("2", 1, 3, None), ("2", 1, 5, None),
              ("2", 1, 7, None), ("2", 1, 8, None), ("2", 1, 9, None), ("2", 5, 0, None), ("2", 5, 2, None),
              ("2", 10, 200, None), ("2", 136, None, None)]
    body, index = [], 6
    for number, (kind, major, minor, access) in enumerate(blocks):
        body.append(f"block-{number}:")
        body.append(f"{index}: JNEImm dst: r2 off: -1 imm: {kind} <block-{number + 1}>")
        index += 1
        if access:
            body += [f"{index}: MovReg32 dst: r1 src: r3", f"{index + 1}: AndImm32 dst: r1 imm: {access}",
                     f"{index + 2}: JNEReg dst: r1 off: -1 src: r3 <block-{number + 1}>"]
            index += 3
        for register, value in ((4, major), (5, minor)):
            if value is not None:
                body.append(f"{index}: JNEImm dst: r{register} off: -1 imm: {value} <block-{number + 1}>")
                index += 1
        body += [f"{index}: MovImm32 dst: r0 imm: 1", f"{index + 1}: Exit"]
        index += 2
    body += [f"block-{len(blocks)}:", f"{index}: MovImm32 dst: r0 imm: 0", f"{index + 1}: Exit"]
    got = devices.listing(devices.program(devices.fold([])))
    assert got == expected("\n".join(body))
    assert index + 2 == 64  # runc's listing ends at instruction 63


def test_partial_access_and_wildcard_major() -> None:
    # read-only access to every character device of minor 3 (a wildcard major: no major check)
    assert listing([rule(False), rule(True, "c", None, 3, "r")]) == expected("""
block-0:
6: JNEImm dst: r2 off: -1 imm: 2 <block-1>
7: MovReg32 dst: r1 src: r3
8: AndImm32 dst: r1 imm: 2
9: JNEReg dst: r1 off: -1 src: r3 <block-1>
10: JNEImm dst: r5 off: -1 imm: 3 <block-1>
""" + verdicts(11, 1, 1, 0))


def test_allows_merge_and_denies_take_access_away() -> None:
    folded = devices.fold([rule(True, "c", 1, 11, "r"), rule(True, "c", 1, 11, "w"), rule(False, "c", 1, 11, "w")],
                          defaults=False)
    assert folded.ordered() == [("c", 1, 11, devices.ACC_READ)]
    assert folded.allows("c", 1, 11, devices.ACC_READ)
    assert not folded.allows("c", 1, 11, devices.ACC_READ | devices.ACC_WRITE)
    assert not folded.allows("c", 1, 12, devices.ACC_READ)


def test_a_hole_in_a_wildcard_is_refused_as_runc_refuses_it() -> None:
    with pytest.raises(ConfigError, match="cannot punch a hole in the wildcard rule allow c \\*:\\* rwm"):
        devices.fold([rule(False), rule(True, "c"), rule(False, "c", 1, 3)], defaults=False)


def test_linux_devices_get_no_rule_and_drop_the_default_they_override() -> None:
    """runc 1.1.5 as root, template rules (deny all), linux.devices /dev/fuse and /dev/zero:
    both open with EPERM, /dev/null opens, any node can be made."""
    linux = {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                         {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600}]}
    folded = devices.fold([rule(False)], devices.listed_paths(linux))
    assert not folded.allows("c", 10, 229, devices.ACC_READ)
    assert not folded.allows("c", 1, 5, devices.ACC_READ)
    assert folded.allows("c", 1, 3, devices.ACC_READ | devices.ACC_WRITE)
    assert folded.allows("b", 7, 0, devices.ACC_MKNOD) and not folded.allows("b", 7, 0, devices.ACC_READ)


@pytest.mark.parametrize("bad, message", [
    ([{"allow": False, "type": "x"}], r"type 'x': a device rule's type is a, b or c"),
    ([{"allow": True, "type": "c", "access": "rx"}], r"access 'rx': only r, w and m"),
    ([{"allow": True, "type": "c", "major": -2}], r"major: -2 is not a device number"),
    ([{"allow": True, "type": "c", "minor": 2**32}], r"minor: 4294967296 is not a device number"),
    (["c 1:3 rwm"], r"a device rule is an object"),
])
def test_bad_rules_are_one_line_naming_the_field(bad, message) -> None:
    with pytest.raises(ConfigError, match=message):
        devices.fold(bad)


def test_the_bytes_are_struct_bpf_insn() -> None:
    code = devices.assemble(devices.program(devices.fold([rule(True), rule(False, "b", 8, 0)], defaults=False)))
    insns = [struct.unpack("<BBhi", code[i:i + 8]) for i in range(0, len(code), 8)]
    assert insns[0] == (0x61, 0x12, 0, 0)       # r2 = *(u32 *)(r1 + 0)
    assert insns[1] == (0x54, 0x02, 0, 0xFFFF)  # w2 &= 0xffff
    assert insns[6] == (0x55, 0x02, 4, 1)       # if r2 != 1 goto +4 (to 11)
    assert insns[8] == (0x55, 0x05, 2, 0)       # if r5 != 0 goto +2 (to 11)
    assert insns[9] == (0xB4, 0x00, 0, 0)       # w0 = 0
    assert insns[10] == (0x95, 0, 0, 0)         # exit
    assert insns[11] == (0xB4, 0x00, 0, 1)


def test_what_a_rootless_container_is_told() -> None:
    nodes = [("/dev/null", "c", 1, 3), ("/dev/kmsg", "c", 1, 11), ("/dev/fuse", "c", 10, 229)]
    folded = devices.fold([rule(False), rule(True, "c", 1, 3), rule(True, "c", 10, 229, "r")], defaults=False)
    assert devices.unenforced(folded, nodes) == ["/dev/kmsg (c 1:11)", "/dev/fuse (c 10:229)"]
