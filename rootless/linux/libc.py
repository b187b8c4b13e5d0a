"""The ctypes fallback of rootless/linux/_native.c: the same functions, with the same contract
(ints and paths in, an int or None out, OSError with the call's errno on failure), for an
install that could not build the extension, and for ROOTLESS_NO_NATIVE=1 (the tests run both).

Only rootless.linux.syscalls imports it. It costs about 4 ms to import (ctypes and its
prototypes), which the extension saves on every create and run; everything it needs is
imported here, at the top, since the container init may call it after pivot_root.
"""

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# x86_64 and aarch64 share the numbers of open_tree, move_mount, close_range, openat2 and
# mount_setattr (Linux 5.2 to 5.12 gave every architecture the same ones).
_NR = {
    "x86_64": {"pivot_root": 155, "setns": 308, "keyctl": 250, "sched_setattr": 314, "ioprio_set": 251,
               "seccomp": 317, "set_mempolicy": 238, "bpf": 321, "capset": 126, "capget": 125},
    "aarch64": {"pivot_root": 41, "setns": 268, "keyctl": 219, "sched_setattr": 274, "ioprio_set": 30,
                "seccomp": 277, "set_mempolicy": 237, "bpf": 280, "capset": 91, "capget": 90},
}[os.uname().machine]
_NR_OPEN_TREE, _NR_MOVE_MOUNT, _NR_CLOSE_RANGE, _NR_OPENAT2, _NR_MOUNT_SETATTR = 428, 429, 436, 437, 442

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.personality.argtypes = [ctypes.c_ulong]
_libc.personality.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long
_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_libc.prlimit.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _b(value) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source, target, fstype, flags: int, data) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)))


def umount2(target, flags: int) -> None:
    _check(_libc.umount2(_b(target), flags))


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags))


def setns(fd: int, nstype: int) -> None:
    _check(_libc.syscall(_NR["setns"], fd, nstype))


def pivot_root(new_root, put_old) -> None:
    _check(_libc.syscall(_NR["pivot_root"], _b(new_root), _b(put_old)))


def sethostname(name: bytes) -> None:
    _check(_libc.sethostname(name, len(name)))


def setdomainname(name: bytes) -> None:
    _check(_libc.setdomainname(name, len(name)))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5))


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path, flags: int, resolve: int, mode: int) -> int:
    how = _OpenHow(flags, mode, resolve)
    return _check(_libc.syscall(_NR_OPENAT2, dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how)))


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(fd: int, flags: int, attr_set: int, attr_clr: int, userns_fd: int) -> None:
    attr = _MountAttr(attr_set, attr_clr, 0, userns_fd)
    _check(_libc.syscall(_NR_MOUNT_SETATTR, fd, b"", flags, ctypes.byref(attr), ctypes.sizeof(attr)))


def close_range(first: int, last: int, flags: int) -> None:
    _check(_libc.syscall(_NR_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)))


def join_session_keyring(name) -> int:
    return _check(_libc.syscall(_NR["keyctl"], 1, _b(name)))  # KEYCTL_JOIN_SESSION_KEYRING


def personality(persona: int) -> int:
    return _check(_libc.personality(persona))


class _SchedAttr(ctypes.Structure):
    """struct sched_attr, SCHED_ATTR_SIZE_VER0 (no utilization clamps)."""
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32), ("sched_flags", ctypes.c_uint64),
                ("sched_nice", ctypes.c_int32), ("sched_priority", ctypes.c_uint32),
                ("sched_runtime", ctypes.c_uint64), ("sched_deadline", ctypes.c_uint64),
                ("sched_period", ctypes.c_uint64)]


def sched_setattr(policy: int, flags: int, nice: int, priority: int, runtime: int, deadline: int,
                  period: int) -> None:
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    _check(_libc.syscall(_NR["sched_setattr"], 0, ctypes.byref(attr), 0))


def ioprio_set(which: int, who: int, value: int) -> None:
    _check(_libc.syscall(_NR["ioprio_set"], which, who, value))


def open_tree(dirfd: int, path, flags: int) -> int:
    return _check(_libc.syscall(_NR_OPEN_TREE, dirfd, _b(path), flags))


def move_mount(from_fd: int, to_fd: int, flags: int) -> None:
    _check(_libc.syscall(_NR_MOVE_MOUNT, from_fd, b"", to_fd, b"", flags))


def fstatfs_type(fd: int) -> int:
    # struct statfs is 120 bytes on x86_64 and aarch64; f_type (a long) comes first.
    buf = ctypes.create_string_buffer(256)
    _check(_libc.fstatfs(fd, buf))
    return ctypes.c_long.from_buffer(buf).value


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_filter(program: bytes, flags: int) -> int:
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    return _check(_libc.syscall(_NR["seccomp"], 1, ctypes.c_ulong(flags), ctypes.byref(fprog)))  # SET_MODE_FILTER


def set_mempolicy(mode: int, mask: bytes | None, maxnode: int) -> None:
    _check(_libc.syscall(_NR["set_mempolicy"], ctypes.c_int(mode), mask, ctypes.c_ulong(maxnode)))


def bpf_prog_load(prog_type: int, insns: bytes, license: bytes, log: bytearray | None = None) -> int:
    code = ctypes.create_string_buffer(insns, len(insns))
    license_buffer = ctypes.create_string_buffer(license)
    attr = (ctypes.c_uint8 * 128)()
    words = (ctypes.c_uint32 * 32).from_buffer(attr)
    words[0], words[1] = prog_type, len(insns) // 8
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(code)
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(license_buffer)
    log_buffer = None
    if log:
        log_buffer = (ctypes.c_char * len(log)).from_buffer(log)
        words[6], words[7] = 1, len(log)  # log_level, log_size
        ctypes.c_uint64.from_buffer(attr, 32).value = ctypes.addressof(log_buffer)
    try:
        return _check(_libc.syscall(_NR["bpf"], 5, ctypes.byref(attr), ctypes.sizeof(attr)))  # BPF_PROG_LOAD
    finally:
        del log_buffer  # the bytearray may be resized again once no ctypes view holds it


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int) -> None:
    attr = (ctypes.c_uint32 * 32)()
    attr[0], attr[1], attr[2], attr[3] = target_fd, prog_fd, attach_type, flags
    _check(_libc.syscall(_NR["bpf"], 8, ctypes.byref(attr), ctypes.sizeof(attr)))  # BPF_PROG_ATTACH


_CAP_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                                 effective >> 32, permitted >> 32, inheritable >> 32)
    _check(_libc.syscall(_NR["capset"], ctypes.byref(header), ctypes.byref(data)))


def capget() -> tuple[int, int, int]:
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(_NR["capget"], ctypes.byref(header), ctypes.byref(data)))
    return tuple(data[i] | data[i + 3] << 32 for i in range(3))


def prlimit(resource: int, soft: int | None = None, hard: int | None = None) -> tuple[int, int]:
    new = None if soft is None else (ctypes.c_uint64 * 2)(soft & (1 << 64) - 1, hard & (1 << 64) - 1)
    old = (ctypes.c_uint64 * 2)()
    _check(_libc.prlimit(0, resource, new, old))
    return old[0], old[1]


# The terminal and the loopback interface: ioctls whose numbers and structures every Linux
# architecture this runs on shares (the generic ioctl numbers; struct termios's c_oflag is its
# second word).
_TCGETS, _TCSETS, _TIOCSWINSZ, _TIOCSCTTY = 0x5401, 0x5402, 0x5414, 0x540E
_ONLCR = 0o4
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def tty_clear_onlcr(fd: int) -> None:
    attrs = (ctypes.c_uint32 * 16)()  # struct termios (60 bytes), as the kernel's TCGETS fills it
    _check(_libc.ioctl(fd, _TCGETS, attrs))
    attrs[1] &= ~_ONLCR
    _check(_libc.ioctl(fd, _TCSETS, attrs))


def tty_set_winsize(fd: int, rows: int, cols: int) -> None:
    size = (ctypes.c_ushort * 4)(rows, cols, 0, 0)
    _check(_libc.ioctl(fd, _TIOCSWINSZ, size))


def tty_set_ctty(fd: int) -> None:
    _check(_libc.ioctl(fd, _TIOCSCTTY, None))


def interface_up(name: bytes) -> None:
    if len(name) >= 16:
        raise OSError(36, os.strerror(36))  # ENAMETOOLONG
    request = ctypes.create_string_buffer(name, 40)  # struct ifreq: the name, then ifr_flags in the union
    flags = ctypes.c_short.from_buffer(request, 16)
    sock = _check(_libc.socket(2, 2 | os.O_CLOEXEC, 0))  # AF_INET, SOCK_DGRAM | SOCK_CLOEXEC
    try:
        _check(_libc.ioctl(sock, _SIOCGIFFLAGS, request))
        if not flags.value & _IFF_UP:
            flags.value |= _IFF_UP
            _check(_libc.ioctl(sock, _SIOCSIFFLAGS, request))
    finally:
        os.close(sock)
