"""Seccomp: the OCI `linux.seccomp` object checked, compiled with libseccomp, and loaded.

Three steps, each where the caller can afford it:

- `check` validates the object in the CLI process, before anything exists. It is pure and
  imports nothing: a bad action, architecture, flag or operator is a ConfigError naming the field.
- `compile` builds the filter in libseccomp's memory through pyseccomp. Importing pyseccomp
  costs about 10 ms (ctypes.util, which brings subprocess, shutil and tempfile, then two runs of
  `ldconfig -p` to find libc and libseccomp), so it is imported in compile only, and compile
  must run before pivot_root: after the root switch an import would read the container's files.
- `load` hands the compiled filter to the kernel: one C call, no import, no file access, so it
  can run after pivot_root, where runc's order puts it (see its docstring). The filter is plain
  memory: compiled before a fork, it loads in the child as well.

Behaviour follows runc (libcontainer/seccomp): syscall names this libseccomp does not know are
skipped, as runc and crun skip them (profiles list syscalls of newer kernels; `--debug` names
them), an errnoRet beside an action that takes none is ignored, a rule whose action is the default action is
skipped (libseccomp refuses it), a rule that tests one argument twice becomes one rule per
condition (libseccomp refuses them in one rule; separate rules OR them), and libseccomp is told
not to set no_new_privs itself: process.noNewPrivileges decides that.
"""

import errno
import os

from rootless.errors import ConfigError, RootlessError

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


def compile(seccomp: dict) -> tuple[object, list[str]]:
    """Build a libseccomp filter from a linux.seccomp object: (filter, warnings).

    Runs check first. The filter lives in libseccomp's memory and needs nothing more to be
    loaded: call this before pivot_root (it imports pyseccomp), then `load` it later. Errors
    are ConfigError; the warnings (for --debug, where runc logs them) name the syscalls this
    libseccomp does not know."""
    check(seccomp)
    import pyseccomp

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
    return filt, warnings


def _condition_groups(pyseccomp, args: list) -> list[list]:
    """The conditions of one rule: one group (ANDed) when each argument is tested once; one
    group per condition when an argument is tested twice, as runc does."""
    conditions = [pyseccomp.Arg(a["index"], OPERATORS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args]
    indexes = [a["index"] for a in args]
    if len(set(indexes)) == len(indexes):
        return [conditions]
    return [[condition] for condition in conditions]


def load(filter) -> None:
    """Load a compiled filter into the calling thread (the init is single-threaded).

    No import, no file access: safe after pivot_root. The kernel accepts the filter only from a
    process that has no_new_privs set or CAP_SYS_ADMIN in its user namespace; libseccomp is told
    not to set no_new_privs itself, so the caller orders it: with process.noNewPrivileges, load
    after setting it, as late as possible before exec; without it, load while the init still has
    CAP_SYS_ADMIN, before switching user and dropping capabilities (runc's order)."""
    try:
        filter.load()
    except OSError as err:
        hint = " (loading needs no_new_privs or CAP_SYS_ADMIN)" if err.errno == errno.EACCES else ""
        raise RootlessError(f"seccomp: load filter: {os.strerror(err.errno)}{hint}") from None



def notify_fd(filter) -> int:
    """The listener fd of a loaded filter with SCMP_ACT_NOTIFY rules. pyseccomp wraps libseccomp's
    seccomp_notify_fd but exposes no method for it: call it on the filter's context. pyseccomp
    is loaded already (compile), so this reads no file and is safe after pivot_root."""
    import pyseccomp
    fd = pyseccomp._libseccomp.seccomp_notify_fd(filter._filter)
    if fd < 0:
        raise RootlessError(f"seccomp: the filter has no notification fd: {os.strerror(-fd)}")
    return fd


def supported() -> tuple[list[str], list[str]]:
    """(architectures, flags) this libseccomp and kernel accept, for `features`: each one tried
    on a scratch filter that is never loaded."""
    import pyseccomp
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
