"""Seccomp: the OCI `linux.seccomp` object checked, compiled with libseccomp, and loaded.

Three steps, each where the caller can afford it:

- `check` validates the object in the CLI process, before anything exists. It is pure and
  imports nothing: a bad action, architecture, flag or operator is a ConfigError naming the field.
- `compile` builds the filter in libseccomp's memory through pyseccomp, which `binding` imports
  without ctypes.util (see there), in compile only: compile must run before pivot_root, where an
  import would read the container's files. rootless.process.seccomp_cache keeps what compile
  returns, so a profile seen before loads no binding at all.
- `load` hands the compiled program to the kernel: one system call, no import, no file access,
  so it can run after pivot_root, where runc's order puts it (see its docstring). The program
  is plain bytes: compiled before a fork, it loads in the child as well.

Behaviour follows runc (libcontainer/seccomp): syscall names this libseccomp does not know are
skipped, as runc and crun skip them (profiles list syscalls of newer kernels; `--debug` names
them), an errnoRet beside an action that takes none is ignored, a rule whose action is the default action is
skipped (libseccomp refuses it), a rule that tests one argument twice becomes one rule per
condition (libseccomp refuses them in one rule; separate rules OR them), and libseccomp is told
not to set no_new_privs itself: process.noNewPrivileges decides that.

As runc does (libcontainer/seccomp/patchbpf), the BPF libseccomp generates gets a stub in front
of it: a system call numbered above every call the profile names, per listed architecture, fails
with ENOSYS instead of meeting the default action. A profile is written against a list of known
calls; a call newer than that list must look absent, not forbidden, so that the C library falls
back to the older call (clone3 to clone, openat2 to openat, faccessat2 to faccessat). The stub
is skipped where the default action lets calls through anyway (ALLOW, LOG, TRACE) or already
returns ENOSYS.
"""

import errno
import os
import sys

from rootless.errors import ConfigError, RootlessError, SyscallError

# Actions as libseccomp encodes them (seccomp.h). ERRNO and TRACE carry 16 bits of data.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,            # the same as KILL_THREAD, as in libseccomp and runc
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
# The actions that take errnoRet, with the largest value libseccomp accepts: an errno is at most
# MAX_ERRNO (4095); TRACE's value is the 16 bits handed to the tracer.
_ERRNO_ACTIONS = {"SCMP_ACT_ERRNO": 4095, "SCMP_ACT_TRACE": 0xFFFF}

_EM = {"X86": 3, "M68K": 4, "MIPS": 8, "PARISC": 15, "PPC": 20, "PPC64": 21, "S390": 22, "ARM": 40,
       "SH": 42, "X86_64": 62, "AARCH64": 183, "RISCV": 243, "LOONGARCH": 258}
_B64, _LE, _N32 = 0x80000000, 0x40000000, 0x20000000
# The architecture tokens of libseccomp (AUDIT_ARCH_* values; X32 is libseccomp's own).
ARCHITECTURES = {
    "SCMP_ARCH_X86": _EM["X86"] | _LE,
    "SCMP_ARCH_X86_64": _EM["X86_64"] | _B64 | _LE,
    "SCMP_ARCH_X32": _EM["X86_64"] | _LE,
    "SCMP_ARCH_ARM": _EM["ARM"] | _LE,
    "SCMP_ARCH_AARCH64": _EM["AARCH64"] | _B64 | _LE,
    "SCMP_ARCH_MIPS": _EM["MIPS"],
    "SCMP_ARCH_MIPS64": _EM["MIPS"] | _B64,
    "SCMP_ARCH_MIPS64N32": _EM["MIPS"] | _B64 | _N32,
    "SCMP_ARCH_MIPSEL": _EM["MIPS"] | _LE,
    "SCMP_ARCH_MIPSEL64": _EM["MIPS"] | _B64 | _LE,
    "SCMP_ARCH_MIPSEL64N32": _EM["MIPS"] | _B64 | _LE | _N32,
    "SCMP_ARCH_PPC": _EM["PPC"],
    "SCMP_ARCH_PPC64": _EM["PPC64"] | _B64,
    "SCMP_ARCH_PPC64LE": _EM["PPC64"] | _B64 | _LE,
    "SCMP_ARCH_S390": _EM["S390"],
    "SCMP_ARCH_S390X": _EM["S390"] | _B64,
    "SCMP_ARCH_PARISC": _EM["PARISC"],
    "SCMP_ARCH_PARISC64": _EM["PARISC"] | _B64,
    "SCMP_ARCH_RISCV64": _EM["RISCV"] | _B64 | _LE,
    "SCMP_ARCH_LOONGARCH64": _EM["LOONGARCH"] | _B64 | _LE,
    "SCMP_ARCH_M68K": _EM["M68K"],
    "SCMP_ARCH_SH": _EM["SH"] | _LE,
    "SCMP_ARCH_SHEB": _EM["SH"],
}

# The kernel's flags for seccomp(SECCOMP_SET_MODE_FILTER) (linux/seccomp.h). TSYNC is not passed,
# as runc does not pass it: the init is single-threaded, and the kernel refuses TSYNC together
# with NEW_LISTENER.
_KERNEL_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 0, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
                 "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
_FLAG_NEW_LISTENER = 8
BPF_MAXINSNS = 4096
# libseccomp's filter attributes (enum scmp_filter_attr).
_ATTR_NNP, _ATTR_OPTIMIZE, _ATTR_SYSRAWRC = 3, 8, 9
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 4,               # SCMP_FLTATR_CTL_TSYNC
    "SECCOMP_FILTER_FLAG_LOG": 6,                 # SCMP_FLTATR_CTL_LOG
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7,          # SCMP_FLTATR_CTL_SSB
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 10,  # SCMP_FLTATR_CTL_WAITKILL, libseccomp 2.6
}

OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

_MAX_ARGS = 6                 # a system call has six arguments
_UINT64 = (1 << 64) - 1
_NR_SCMP_ERROR = -1           # what libseccomp resolves an unknown syscall name to
_OPTIMIZE_FROM = 32           # runc turns on libseccomp's binary tree beyond 32 syscalls
_WHERE = "config.json: linux.seccomp"


def check(seccomp: dict) -> None:
    """Validate an OCI linux.seccomp object without libseccomp: ConfigError naming the field.

    Syscall names are not checked here: libseccomp resolves them, and compile skips (and reports)
    the ones it does not know."""
    if not isinstance(seccomp, dict):
        _fail("", "must be an object")
    default = seccomp.get("defaultAction")
    if default is None:
        _fail(".defaultAction", "is required")
    _check_action(".defaultAction", default)
    if default == "SCMP_ACT_NOTIFY":
        # As runc: the init writes to its parent after loading, and a notified write would wait
        # for an agent that has not received the listener yet.
        _fail(".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    if "defaultErrnoRet" in seccomp:
        _check_errno_ret(".defaultErrnoRet", seccomp["defaultErrnoRet"], default)
    for i, arch in enumerate(_list(seccomp, "architectures")):
        if arch not in ARCHITECTURES:
            _fail(f".architectures[{i}]", f"unknown architecture {_show(arch)} (not an SCMP_ARCH_* name of the OCI spec)")
    for i, flag in enumerate(_list(seccomp, "flags")):
        if flag not in FLAGS:
            _fail(f".flags[{i}]", f"unknown flag {_show(flag)} (known: {', '.join(FLAGS)})")
    for key in ("listenerPath", "listenerMetadata"):
        if key in seccomp and not isinstance(seccomp[key], str):
            _fail(f".{key}", "must be a string")
    # listenerMetadata without listenerPath, and listenerPath without SCMP_ACT_NOTIFY, are
    # ignored, as runc and crun do (rootless.oci.config drops an unused listenerPath).
    if seccomp.get("listenerPath") and not seccomp["listenerPath"].startswith("/"):
        _fail(".listenerPath", f"{_show(seccomp['listenerPath'])} must be an absolute path")
    for i, rule in enumerate(_list(seccomp, "syscalls")):
        _check_rule(f".syscalls[{i}]", rule, bool(seccomp.get("listenerPath")))


def _check_rule(where: str, rule, has_listener: bool) -> None:
    if not isinstance(rule, dict):
        _fail(where, "must be an object")
    names = rule.get("names")
    if not isinstance(names, list):  # empty: a rule that matches nothing, as in runc and crun
        _fail(f"{where}.names", "must be a list of syscall names")
    for j, name in enumerate(names):
        if not isinstance(name, str):
            _fail(f"{where}.names[{j}]", "must be a string")
    action = rule.get("action")
    if action is None:
        _fail(f"{where}.action", "is required")
    _check_action(f"{where}.action", action)
    if action == "SCMP_ACT_NOTIFY":
        if not has_listener:
            _fail(f"{where}.action", "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the seccomp agent's socket)")
        if "write" in names:
            _fail(f"{where}.action", "SCMP_ACT_NOTIFY cannot be used for write (the init writes after loading)")
    if "errnoRet" in rule:
        _check_errno_ret(f"{where}.errnoRet", rule["errnoRet"], action)
    args = _list(rule, "args", where)
    if len(args) > _MAX_ARGS:
        _fail(f"{where}.args", f"{len(args)} conditions, at most {_MAX_ARGS} (a syscall has {_MAX_ARGS} arguments)")
    for k, arg in enumerate(args):
        at = f"{where}.args[{k}]"
        if not isinstance(arg, dict):
            _fail(at, "must be an object")
        index = arg.get("index")
        if not _is_uint(index) or index >= _MAX_ARGS:
            _fail(f"{at}.index", f"must be an argument index from 0 to {_MAX_ARGS - 1}, not {_show(index)}")
        for key in ("value", "valueTwo"):
            if (key in arg or key == "value") and not (_is_uint(arg.get(key)) and arg[key] <= _UINT64):
                _fail(f"{at}.{key}", f"must be an unsigned 64-bit integer, not {_show(arg.get(key))}")
        op = arg.get("op")
        if op not in OPERATORS:
            _fail(f"{at}.op", f"unknown operator {_show(op)} (known: {', '.join(OPERATORS)})")


def _check_action(where: str, action) -> None:
    if action not in ACTIONS:
        _fail(where, f"unknown action {_show(action)} (known: {', '.join(ACTIONS)})")


def _check_errno_ret(where: str, value, action: str) -> None:
    if action not in _ERRNO_ACTIONS:
        return  # runc and crun ignore it there; _action drops it
    limit = _ERRNO_ACTIONS[action]
    if not _is_uint(value) or value > limit:
        _fail(where, f"must be an integer from 0 to {limit} for {action}, not {_show(value)}")


def _list(obj: dict, key: str, where: str = "") -> list:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(f"{where}.{key}", "must be a list")
    return value


def _is_uint(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _show(value) -> str:
    """A value from config.json as it stands there, on one line."""
    return f'"{value}"' if isinstance(value, str) and value.isprintable() else repr(value)


def _fail(where: str, problem: str):
    raise ConfigError(f"{_WHERE}{where}: {problem}")


def _action(name: str, errno_ret: int | None) -> int:
    """libseccomp's number for an action; ERRNO and TRACE carry errnoRet, EPERM when unset."""
    if name in _ERRNO_ACTIONS:
        return ACTIONS[name] | (errno.EPERM if errno_ret is None else errno_ret)
    return ACTIONS[name]


class Program:
    """A compiled filter: the BPF the kernel loads (sock_filter records, host byte order), the
    flags it loads with, and whether it hands out a listener fd (SCMP_ACT_NOTIFY rules)."""

    def __init__(self, bpf: bytes, flags: int, notify: bool, libseccomp_filter=None):
        self.bpf, self.flags, self.notify = bpf, flags, notify
        self.filter = libseccomp_filter     # what libseccomp made, for --debug and tests


def has_notify(seccomp: dict) -> bool:
    return any(isinstance(rule, dict) and rule.get("action") == "SCMP_ACT_NOTIFY"
               for rule in seccomp.get("syscalls") or ())


def agent_path(seccomp: dict | None) -> str | None:
    """The seccomp agent's socket to hand the listener to: listenerPath, when a rule notifies.
    Without SCMP_ACT_NOTIFY rules there is no listener, and runc and crun ignore the path."""
    if not seccomp or not seccomp.get("listenerPath") or not has_notify(seccomp):
        return None
    return seccomp["listenerPath"]


# The soname libseccomp has kept since 2.0 (2012): what ctypes.util would find.
LIBSECCOMP = "libseccomp.so.2"


def binding():
    """pyseccomp, imported without ctypes.util. pyseccomp finds libc and libseccomp with
    ctypes.util.find_library, which imports subprocess, shutil and tempfile and runs `ldconfig -p`
    twice (about 10 ms); the dynamic loader finds libseccomp by its soname just as well, and
    None is the process's own libc. So for this one import `ctypes.util` is a stand-in that
    answers those two names, and it is gone afterwards. Where the soname does not load, the real
    ctypes.util searches."""
    if "pyseccomp" in sys.modules or "ctypes.util" in sys.modules:
        import pyseccomp
        return pyseccomp
    import ctypes
    try:
        ctypes.CDLL(LIBSECCOMP)
    except OSError:
        import pyseccomp
        return pyseccomp
    stand_in = type(sys)("ctypes.util")
    stand_in.find_library = {"c": None, "seccomp": LIBSECCOMP}.get
    sys.modules["ctypes.util"] = ctypes.util = stand_in
    try:
        import pyseccomp
    finally:
        del sys.modules["ctypes.util"], ctypes.util
    return pyseccomp


def compile(seccomp: dict) -> tuple[Program, list[str]]:
    """Build the filter of a linux.seccomp object: (program, warnings).

    Runs check first. libseccomp generates the BPF, the ENOSYS stub goes in front of it, and the
    result is plain bytes that need nothing more to be loaded: call this before pivot_root (it
    imports pyseccomp), then `load` it later. Errors are ConfigError; the warnings (for --debug,
    where runc logs them) name the syscalls this libseccomp does not know."""
    check(seccomp)
    pyseccomp = binding()

    default = _action(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    try:
        filt = pyseccomp.SyscallFilter(default)
        # process.noNewPrivileges decides about no_new_privs, not libseccomp (as runc does), and
        # a failed load reports the kernel's errno rather than libseccomp's ECANCELED.
        filt.set_attr(_ATTR_NNP, 0)
        filt.set_attr(_ATTR_SYSRAWRC, 1)
    except OSError as err:
        raise ConfigError(f"{_WHERE}: libseccomp cannot make a filter: {err.strerror}") from None

    # Architectures before rules: libseccomp adds a rule only to the architectures present.
    native = pyseccomp.system_arch()
    for i, name in enumerate(seccomp.get("architectures") or []):
        token = ARCHITECTURES[name]
        if token == native:
            continue
        try:
            if not filt.exist_arch(token):     # listed twice
                filt.add_arch(token)
        except OSError as err:
            raise ConfigError(f"{_WHERE}.architectures[{i}]: {name} is not supported by this libseccomp "
                              f"({err.strerror})") from None
    for i, flag in enumerate(seccomp.get("flags") or []):
        try:
            filt.set_attr(FLAGS[flag], 1)
        except OSError as err:
            raise ConfigError(f"{_WHERE}.flags[{i}]: {flag} is not supported by this libseccomp or kernel "
                              f"({err.strerror})") from None

    unknown: list[str] = []
    numbers: dict[str, int] = {}
    added = 0
    for i, rule in enumerate(seccomp.get("syscalls") or []):
        action = _action(rule["action"], rule.get("errnoRet"))
        if action == default:
            continue
        for name in rule["names"]:
            if name not in numbers:
                # libseccomp's syscall table is shared by its architectures: a name known on any
                # of them resolves (to a pseudo number where the native arch lacks it), so an
                # error here means no listed architecture knows the name.
                numbers[name] = pyseccomp.resolve_syscall(0, name)
                if numbers[name] == _NR_SCMP_ERROR:
                    unknown.append(name)
            if numbers[name] == _NR_SCMP_ERROR:
                continue
            for conditions in _condition_groups(pyseccomp, rule.get("args") or []):
                try:
                    filt.add_rule(action, numbers[name], *conditions)
                except OSError as err:
                    raise ConfigError(f"{_WHERE}.syscalls[{i}]: libseccomp refused the rule for {name}: "
                                      f"{err.strerror}") from None
                added += 1
    if added > _OPTIMIZE_FROM:
        # A binary search over syscall numbers instead of a linear scan, as runc asks for
        # (libseccomp up to 2.5.4 misbehaves with it on a filter without rules).
        try:
            filt.set_attr(_ATTR_OPTIMIZE, 2)
        except OSError:
            pass                       # an older libseccomp: a linear filter works the same
    warnings = []
    if unknown:
        warnings.append(f"seccomp: ignored {len(unknown)} syscall name(s) this libseccomp does not know: "
                        + ", ".join(map(_show, unknown)))
    bpf = _export(filt)
    if _wants_enosys_stub(seccomp):
        last = _last_syscalls(pyseccomp, seccomp, warnings)
        if last:
            bpf = enosys_stub(last) + bpf
    if len(bpf) // 8 > BPF_MAXINSNS:
        raise ConfigError(f"{_WHERE}: the filter takes {len(bpf) // 8} BPF instructions, more than the "
                          f"kernel's {BPF_MAXINSNS}: merge rules or drop argument conditions")
    flags = 0
    for flag in seccomp.get("flags") or ():
        flags |= _KERNEL_FLAGS[flag]
    notify = has_notify(seccomp)
    if notify:
        flags |= _FLAG_NEW_LISTENER
    else:
        # The kernel takes it only with a listener; without one it has nothing to change.
        flags &= ~_KERNEL_FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    return Program(bpf, flags, notify, filt), warnings


def _export(filt) -> bytes:
    """libseccomp's BPF for the filter, through a memfd (seccomp_export_bpf writes to an fd)."""
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        class _Fd:
            def fileno(self):
                return fd
        try:
            filt.export_bpf(_Fd())
        except OSError as err:
            raise ConfigError(f"{_WHERE}: libseccomp cannot generate the filter: {err.strerror}") from None
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _wants_enosys_stub(seccomp: dict) -> bool:
    """runc's rule: not where the default action lets calls through (a tracer, or the log, deals
    with new calls on its own), nor where it already returns ENOSYS."""
    default = seccomp["defaultAction"]
    if default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        return False
    return not (default == "SCMP_ACT_ERRNO" and seccomp.get("defaultErrnoRet") == errno.ENOSYS)


_X86_64 = ARCHITECTURES["SCMP_ARCH_X86_64"]
_X32 = ARCHITECTURES["SCMP_ARCH_X32"]
_S390 = (ARCHITECTURES["SCMP_ARCH_S390"], ARCHITECTURES["SCMP_ARCH_S390X"])
_X32_SYSCALL_BIT = 0x40000000


def _last_syscalls(pyseccomp, seccomp: dict, warnings: list) -> dict[int, dict[int, int]]:
    """The highest system call number the profile names, per listed architecture: {AUDIT_ARCH
    value: {libseccomp token: number}}. x32 shares x86_64's AUDIT_ARCH value (its calls carry
    bit 30), so that key may hold two tokens. Only listed architectures count, as in runc: any
    other meets libseccomp's bad-architecture action anyway."""
    names = {name for rule in seccomp.get("syscalls") or () for name in rule["names"]}
    last: dict[int, dict[int, int]] = {}
    for arch in dict.fromkeys(seccomp.get("architectures") or ()):
        token = ARCHITECTURES[arch]
        native = _X86_64 if token == _X32 else token
        numbers = [pyseccomp.resolve_syscall(token, name) for name in names]
        highest = max((n for n in numbers if n > 0), default=0)
        if highest:
            last.setdefault(native, {})[token] = highest
        else:
            warnings.append(f"seccomp: no system call of the profile exists on {arch}: no ENOSYS stub for it")
    return last


# Classic BPF (linux/filter.h): load word at absolute offset, jumps against a constant, return.
_LD_ABS, _JA, _JEQ, _JGT, _JSET, _RET = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
_NR_OFFSET, _ARCH_OFFSET = 0, 4          # struct seccomp_data
_RET_ENOSYS = ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS


def enosys_stub(last: dict[int, dict[int, int]]) -> bytes:
    """The instructions that go before libseccomp's filter: per architecture, a call numbered
    above the last one the profile knows returns ENOSYS; everything else falls through to the
    filter, which starts right after the stub (BPF jumps only forward, so prepending keeps the
    filter's own jumps valid). Laid out with labels, then encoded."""
    code: list[tuple] = [("ld", _ARCH_OFFSET)]
    for i, native in enumerate(last):
        code.append(("jmp", _JEQ, native, f"arch{i}", None))
    code.append(("ja", "filter"))
    for i, (native, tokens) in enumerate(last.items()):
        code += [("label", f"arch{i}"), ("ld", _NR_OFFSET)]
        if native in _S390:
            # s390 multiplexes unknown large numbers onto setup(2), number 0: runc answers it too.
            code.append(("jmp", _JEQ, 0, "enosys", None))
        if native == _X86_64:
            x86_64, x32 = tokens.get(_X86_64), tokens.get(_X32)
            if x86_64 and x32:
                code += [("jmp", _JSET, _X32_SYSCALL_BIT, f"x32_{i}", None),
                         ("jmp", _JGT, x86_64, "enosys", "filter"),
                         ("label", f"x32_{i}"),
                         ("jmp", _JGT, x32, "enosys", "filter")]
            elif x86_64:
                code += [("jmp", _JSET, _X32_SYSCALL_BIT, "filter", None),
                         ("jmp", _JGT, x86_64, "enosys", "filter")]
            else:
                code += [("jmp", _JSET, _X32_SYSCALL_BIT, None, "filter"),
                         ("jmp", _JGT, x32, "enosys", "filter")]
        else:
            code.append(("jmp", _JGT, tokens[native], "enosys", "filter"))
    code += [("label", "enosys"), ("ret", _RET_ENOSYS), ("label", "filter")]
    return _assemble(code)


def _assemble(code: list[tuple]) -> bytes:
    import struct

    labels, pc = {}, 0
    for op in code:
        if op[0] == "label":
            labels[op[1]] = pc
        else:
            pc += 1
    out, pc = [], 0
    for op in code:
        kind = op[0]
        if kind == "label":
            continue
        if kind == "ld":
            out.append(struct.pack("=HBBI", _LD_ABS, 0, 0, op[1]))
        elif kind == "ret":
            out.append(struct.pack("=HBBI", _RET, 0, 0, op[1]))
        elif kind == "ja":
            out.append(struct.pack("=HBBI", _JA, 0, 0, labels[op[1]] - pc - 1))
        else:
            _, jump, k, true, false = op
            offsets = [0 if target is None else labels[target] - pc - 1 for target in (true, false)]
            if not all(0 <= offset <= 255 for offset in offsets):
                raise ConfigError(f"{_WHERE}: too many architectures for the ENOSYS stub")
            out.append(struct.pack("=HBBI", jump, offsets[0], offsets[1], k))
        pc += 1
    return b"".join(out)


def _condition_groups(pyseccomp, args: list) -> list[list]:
    """The conditions of one rule: one group (ANDed) when each argument is tested once; one
    group per condition when an argument is tested twice, as runc does."""
    conditions = [pyseccomp.Arg(a["index"], OPERATORS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args]
    indexes = [a["index"] for a in args]
    if len(set(indexes)) == len(indexes):
        return [conditions]
    return [[condition] for condition in conditions]


def load(program: Program) -> int:
    """Load a compiled program into the calling thread (the init is single-threaded). Returns
    the listener fd when the program notifies (SCMP_ACT_NOTIFY rules), else -1.

    One system call, no import, no file access: safe after pivot_root. The kernel accepts the
    filter only from a process that has no_new_privs set or CAP_SYS_ADMIN in its user namespace;
    the caller orders it: with process.noNewPrivileges, load after setting it, as late as
    possible before exec; without it, load while the init still has CAP_SYS_ADMIN, before
    switching user and dropping capabilities (runc's order)."""
    # Loaded already by whoever loads a filter (the init and exec's stage import it before the
    # root changes): a lookup in sys.modules, no file read. `check` callers never pay for ctypes.
    from rootless.linux import syscalls as sc
    try:
        fd = sc.seccomp_set_filter(program.bpf, program.flags)
    except SyscallError as err:
        hint = " (loading needs no_new_privs or CAP_SYS_ADMIN)" if err.errno == errno.EACCES else ""
        raise RootlessError(f"seccomp: load filter: {os.strerror(err.errno)}{hint}") from None
    return fd if program.notify else -1


def supported() -> tuple[list[str], list[str]]:
    """(architectures, flags) this libseccomp and kernel accept, for `features`: each one tried
    on a scratch filter that is never loaded."""
    pyseccomp = binding()
    archs, flags = [], []
    for name, token in ARCHITECTURES.items():
        filt = pyseccomp.SyscallFilter(ACTIONS["SCMP_ACT_ALLOW"])
        try:
            if not filt.exist_arch(token):
                filt.add_arch(token)
            archs.append(name)
        except OSError:
            pass
    for name, attribute in FLAGS.items():
        try:
            pyseccomp.SyscallFilter(ACTIONS["SCMP_ACT_ALLOW"]).set_attr(attribute, 1)
            flags.append(name)
        except OSError:
            pass
    return archs, flags
