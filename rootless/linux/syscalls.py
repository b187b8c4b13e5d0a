"""Every libc call and raw system call the runtime makes that Python's os module lacks.

This is the only module that touches ctypes. Each wrapper raises SyscallError naming the call
and the path it worked on, with errno read right after the call (use_errno=True).
"""

import ctypes
import errno
import os

from rootless.errors import SyscallError

_libc = ctypes.CDLL(None, use_errno=True)

# x86_64 and aarch64 share these numbers for the calls glibc 2.36 does not wrap.
_NR = {
    "x86_64": {"pivot_root": 155, "openat2": 437, "close_range": 436, "setns": 308, "keyctl": 250,
               "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "openat2": 437, "close_range": 436, "setns": 268, "keyctl": 219,
                "mount_setattr": 442},
}[os.uname().machine]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long
_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]


def _check(result: int, call: str, path: str | None = None, hint: str | None = None) -> int:
    if result < 0:
        raise SyscallError(call, ctypes.get_errno(), path, hint)
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None, *, shown_target: str | None = None) -> None:
    """mount(2). shown_target names the target in errors when `target` is a /proc fd path."""
    result = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(result, f"mount {fstype or source or ''}".rstrip(), shown_target or target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def unshare(flags: int) -> None:
    if _libc.unshare(flags) < 0:
        err = ctypes.get_errno()
        hint = None
        if flags & CLONE_NEWUSER and err in (1, 22, 28):
            hint = ("are unprivileged user namespaces enabled? check sysctl "
                    "kernel.unprivileged_userns_clone and user.max_user_namespaces")
        raise SyscallError("unshare", err, None, hint)


def setns(fd: int, nstype: int, path: str) -> None:
    _check(_libc.syscall(_NR["setns"], fd, nstype), "setns", path)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname", name)


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0, *, what: str = "prctl") -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), what)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_OPENAT2_TRIES = 128


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0, *, shown: str | None = None) -> int:
    """openat2(2): resolve `path` below `dirfd` as the kernel does, symlinks included."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    for _ in range(_OPENAT2_TRIES):
        fd = _libc.syscall(_NR["openat2"], dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
        # EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH, a rename or mount anywhere on the
        # host raced the walk through "..", and the kernel could not vouch for it. Retrying is
        # the documented answer (openat2(2)); a busy host does this now and then.
        if fd >= 0 or ctypes.get_errno() != errno.EAGAIN:
            break
    return _check(fd, "openat2", shown or path)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr_recursive(fd: int, attr_set: int, attr_clr: int, *, shown: str) -> None:
    """mount_setattr(2) on the mount open at fd and every mount below it."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    result = _libc.syscall(_NR["mount_setattr"], fd, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                           ctypes.byref(attr), ctypes.sizeof(attr))
    _check(result, "mount_setattr", shown)


CLOSE_RANGE_CLOEXEC = 4


def close_range(first: int, last: int = 0xFFFFFFFF, on_exec: bool = False) -> None:
    """Close fds first..last; with on_exec, mark them close-on-exec instead."""
    if _libc.syscall(_NR["close_range"], first, last, CLOSE_RANGE_CLOEXEC if on_exec else 0) < 0:
        # Kernels before 5.9: fall back to closing what /proc/self/fd lists.
        for name in os.listdir("/proc/self/fd"):
            if first <= int(name) <= last:
                try:
                    if on_exec:
                        os.set_inheritable(int(name), False)
                    else:
                        os.close(int(name))
                except OSError:
                    pass


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1, what="prctl(PR_SET_CHILD_SUBREAPER)")


def set_pdeathsig(signum: int) -> None:
    prctl(PR_SET_PDEATHSIG, signum, what="prctl(PR_SET_PDEATHSIG)")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, int(on), what="prctl(PR_SET_KEEPCAPS)")


def set_dumpable(on: bool) -> None:
    prctl(PR_SET_DUMPABLE, int(on), what="prctl(PR_SET_DUMPABLE)")


def capbset_knows(cap: int) -> bool:
    """Whether the kernel knows capability `cap` (PR_CAPBSET_READ fails with EINVAL past
    /proc/sys/kernel/cap_last_cap): no file to read, so it works after pivot_root."""
    return _libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap, what=f"prctl(PR_CAPBSET_DROP, {cap})")


def ambient_clear() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="prctl(PR_CAP_AMBIENT_CLEAR_ALL)")


def ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, what=f"prctl(PR_CAP_AMBIENT_RAISE, {cap})")


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_new_session_keyring(name: str) -> None:
    """A fresh session keyring, so the container cannot read the caller's keys (runc's default)."""
    _check(_libc.syscall(_NR["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, _b(name)), "keyctl(JOIN_SESSION_KEYRING)")


# Process attributes and idmapped mounts (rootless.process.attrs, rootless.rootfs.apply). The numbers of
# open_tree and move_mount are shared by every architecture since Linux 5.2.
_NR_PROC = {"x86_64": {"sched_setattr": 314, "ioprio_set": 251, "seccomp": 317, "set_mempolicy": 238},
            "aarch64": {"sched_setattr": 274, "ioprio_set": 30, "seccomp": 277, "set_mempolicy": 237}}[os.uname().machine]
_NR_OPEN_TREE, _NR_MOVE_MOUNT = 428, 429
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_IDMAP = 0x100000
IOPRIO_WHO_PROCESS = 1

_libc.personality.argtypes = [ctypes.c_ulong]
_libc.personality.restype = ctypes.c_int


def personality(persona: int) -> None:
    _check(_libc.personality(persona), f"personality({persona:#x})")


class SchedAttr(ctypes.Structure):
    """struct sched_attr, SCHED_ATTR_SIZE_VER0 (no utilization clamps)."""
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32), ("sched_flags", ctypes.c_uint64),
                ("sched_nice", ctypes.c_int32), ("sched_priority", ctypes.c_uint32),
                ("sched_runtime", ctypes.c_uint64), ("sched_deadline", ctypes.c_uint64),
                ("sched_period", ctypes.c_uint64)]


def sched_setattr(policy: int, flags: int, nice: int, priority: int, runtime: int, deadline: int,
                  period: int, *, hint: str | None = None) -> None:
    attr = SchedAttr(ctypes.sizeof(SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    result = _libc.syscall(_NR_PROC["sched_setattr"], 0, ctypes.byref(attr), 0)
    _check(result, "sched_setattr", None, hint)


def ioprio_set(value: int, *, hint: str | None = None) -> None:
    _check(_libc.syscall(_NR_PROC["ioprio_set"], IOPRIO_WHO_PROCESS, 0, value), "ioprio_set", None, hint)


def open_tree(dirfd: int, path: str, flags: int, *, shown: str) -> int:
    return _check(_libc.syscall(_NR_OPEN_TREE, dirfd, _b(path), flags | os.O_CLOEXEC), "open_tree", shown)


def mount_setattr_idmap(fd: int, userns_fd: int, recursive: bool, *, shown: str) -> None:
    """Idmap the detached mount open at fd with the ID maps of the user namespace at userns_fd."""
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    result = _libc.syscall(_NR["mount_setattr"], fd, b"", flags, ctypes.byref(attr), ctypes.sizeof(attr))
    _check(result, "mount_setattr(MOUNT_ATTR_IDMAP)", shown)


def move_mount(fd: int, target_fd: int, *, shown: str) -> None:
    """Attach the detached mount open at fd on the directory open at target_fd (O_PATH is fine)."""
    result = _libc.syscall(_NR_MOVE_MOUNT, fd, b"", target_fd, b"", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
    _check(result, "move_mount", shown)


PROC_SUPER_MAGIC = 0x9FA0


def fstatfs_type(fd: int, shown: str) -> int:
    """f_type of the filesystem fd lies on (fstatfs(2)): which kernel filesystem it really is."""
    # struct statfs is 120 bytes on x86_64 and aarch64; f_type (a long) comes first.
    buf = ctypes.create_string_buffer(256)
    _check(_libc.fstatfs(fd, buf), "fstatfs", shown)
    return ctypes.c_long.from_buffer(buf).value


SECCOMP_SET_MODE_FILTER = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_filter(program: bytes, flags: int) -> int:
    """Load a classic BPF program (struct sock_filter, 8 bytes each) as this thread's seccomp
    filter. Returns what the kernel returns: the listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER,
    else 0. No allocation but a ctypes buffer: safe after pivot_root."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    return _check(_libc.syscall(_NR_PROC["seccomp"], SECCOMP_SET_MODE_FILTER, ctypes.c_ulong(flags),
                                ctypes.byref(fprog)), "seccomp(SECCOMP_SET_MODE_FILTER)")


def set_mempolicy(mode: int, nodes: list[int], *, hint: str | None = None) -> None:
    """set_mempolicy(2): mode (with its MPOL_F_* flags ORed in) and the node mask."""
    maxnode = (max(nodes) + 1) if nodes else 0
    words = (ctypes.c_ulong * max(1, (maxnode + 63) // 64))()
    for node in nodes:
        words[node // 64] |= 1 << (node % 64)
    # The kernel reads maxnode - 1 bits (a historical off-by-one every caller adds one for).
    result = _libc.syscall(_NR_PROC["set_mempolicy"], ctypes.c_int(mode),
                           words if nodes else None, ctypes.c_ulong(maxnode + 1 if nodes else 0))
    _check(result, "set_mempolicy", None, hint)


# bpf(2): only what the device filter of a root container's cgroup needs
# (rootless.cgroups.devices). union bpf_attr is passed as a zeroed 128-byte buffer (the kernel
# checks that what it does not know of is zero), its fields at their offsets in the UAPI.
_NR_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


def _bpf(command: int, attr, call: str, shown: str, hint: str | None = None) -> int:
    return _check(_libc.syscall(_NR_BPF, command, ctypes.byref(attr), ctypes.sizeof(attr)), call, shown, hint)


def bpf_prog_load_cgroup_device(code: bytes, license: str, *, shown: str) -> int:
    """BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program (struct bpf_insn, 8 bytes each);
    returns its fd. A refusal is tried once more with the verifier's log, to say why (a log
    too small for the verifier's words fails the load itself: ENOSPC)."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_buffer = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(1 << 16)
    attr = (ctypes.c_uint8 * 128)()
    words = (ctypes.c_uint32 * 32).from_buffer(attr)
    words[0], words[1] = BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(insns)
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(license_buffer)
    call = "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE)"
    try:
        fd = _bpf(BPF_PROG_LOAD, attr, call, shown)
    except SyscallError as err:
        if err.errno == errno.EPERM:
            raise
        words[6], words[7] = 1, len(log)  # log_level, log_size
        ctypes.c_uint64.from_buffer(attr, 32).value = ctypes.addressof(log)
        retried = _libc.syscall(_NR_BPF, BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
        if retried >= 0:  # (not seen: a load that fails once and passes with a log)
            os.close(retried)
            raise
        said = log.value.decode(errors="replace").strip().splitlines()
        raise SyscallError(call, err.errno, shown, f"verifier: {said[-1]}" if said else None) from None
    os.set_inheritable(fd, False)
    return fd


def bpf_prog_attach_cgroup_device(prog_fd: int, cgroup_fd: int, *, shown: str) -> None:
    """BPF_PROG_ATTACH as BPF_CGROUP_DEVICE with BPF_F_ALLOW_MULTI: beside any program already
    attached (systemd's), never in place of it."""
    attr = (ctypes.c_uint32 * 32)()
    attr[0], attr[1], attr[2], attr[3] = cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI
    _bpf(BPF_PROG_ATTACH, attr, "bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)", shown)
