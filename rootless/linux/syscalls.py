"""Every libc call and raw system call the runtime makes that Python's os module lacks.

Each wrapper raises SyscallError naming the call and the path it worked on. The calls
themselves are made by rootless/linux/_native.c, a small extension module built at install
time, or, where it did not build (or ROOTLESS_NO_NATIVE=1 is set: the tests run both), by its
ctypes twin rootless/linux/libc.py: `import ctypes` and its prototypes cost about 4 ms on every
create and run. Both raise a bare OSError(errno); the words are this module's, the same for both.
"""

import errno
import os
import sys

from rootless.errors import SyscallError

if os.environ.get("ROOTLESS_NO_NATIVE") == "1":
    _native = None
else:
    try:
        from rootless.linux import _native
    except ImportError:
        _native = None
if _native is None:
    from rootless.linux import libc as _native  # noqa: F811 (the same functions, through ctypes)

NATIVE = _native.__name__.endswith("._native")

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


def _call(function, *args, what: str, path: str | None = None, hint: str | None = None):
    """function(*args), its OSError as a SyscallError naming the call (`what`), path and hint."""
    try:
        return function(*args)
    except OSError as err:
        raise SyscallError(what, err.errno, path, hint) from None


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None, *, shown_target: str | None = None) -> None:
    """mount(2). shown_target names the target in errors when `target` is a /proc fd path."""
    _call(_native.mount, source, target, fstype, flags, data, what=f"mount {fstype or source or ''}".rstrip(),
          path=shown_target or target)


def umount2(target: str, flags: int = 0) -> None:
    _call(_native.umount2, target, flags, what="umount2", path=target)


def unshare(flags: int) -> None:
    try:
        _native.unshare(flags)
    except OSError as err:
        hint = None
        if flags & CLONE_NEWUSER and err.errno in (1, 22, 28):
            hint = ("are unprivileged user namespaces enabled? check sysctl "
                    "kernel.unprivileged_userns_clone and user.max_user_namespaces")
        raise SyscallError("unshare", err.errno, None, hint) from None


def setns(fd: int, nstype: int, path: str) -> None:
    _call(_native.setns, fd, nstype, what="setns", path=path)


def pivot_root(new_root: str, put_old: str) -> None:
    _call(_native.pivot_root, new_root, put_old, what="pivot_root", path=new_root)


def sethostname(name: str) -> None:
    _call(_native.sethostname, name.encode(), what="sethostname", path=name)


def setdomainname(name: str) -> None:
    _call(_native.setdomainname, name.encode(), what="setdomainname", path=name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0, *, what: str = "prctl") -> int:
    return _call(_native.prctl, option, arg2, arg3, arg4, arg5, what=what)


_OPENAT2_TRIES = 128


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0, *, shown: str | None = None) -> int:
    """openat2(2): resolve `path` below `dirfd` as the kernel does, symlinks included."""
    for _ in range(_OPENAT2_TRIES):
        try:
            return _native.openat2(dirfd, path, flags | os.O_CLOEXEC, resolve, mode)
        except OSError as err:
            # EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH, a rename or mount anywhere on the
            # host raced the walk through "..", and the kernel could not vouch for it. Retrying
            # is the documented answer (openat2(2)); a busy host does this now and then.
            if err.errno != errno.EAGAIN:
                raise SyscallError("openat2", err.errno, shown or path) from None
    raise SyscallError("openat2", errno.EAGAIN, shown or path)


def mount_setattr_recursive(fd: int, attr_set: int, attr_clr: int, *, shown: str) -> None:
    """mount_setattr(2) on the mount open at fd and every mount below it."""
    _call(_native.mount_setattr, fd, AT_EMPTY_PATH | AT_RECURSIVE, attr_set, attr_clr, 0, what="mount_setattr",
          path=shown)


CLOSE_RANGE_CLOEXEC = 4


def close_range(first: int, last: int = 0xFFFFFFFF, on_exec: bool = False) -> None:
    """Close fds first..last; with on_exec, mark them close-on-exec instead."""
    try:
        _native.close_range(first, last, CLOSE_RANGE_CLOEXEC if on_exec else 0)
    except OSError:
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
    try:
        _native.prctl(PR_CAPBSET_READ, cap, 0, 0, 0)
    except OSError:
        return False
    return True


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap, what=f"prctl(PR_CAPBSET_DROP, {cap})")


def ambient_clear() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="prctl(PR_CAP_AMBIENT_CLEAR_ALL)")


def ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, what=f"prctl(PR_CAP_AMBIENT_RAISE, {cap})")


def _mask(numbers) -> int:
    mask = 0
    for number in numbers:
        mask |= 1 << number
    return mask


def capset(effective, permitted, inheritable) -> None:
    """This thread's effective, permitted and inheritable sets (capability numbers), exactly:
    every capability not named is cleared, in one capset(2)."""
    _call(_native.capset, _mask(effective), _mask(permitted), _mask(inheritable), what="capset")


def capget() -> tuple[set[int], set[int], set[int]]:
    """This thread's effective, permitted and inheritable sets, as capability numbers."""
    masks = _call(_native.capget, what="capget")
    return tuple({n for n in range(64) if mask >> n & 1} for mask in masks)


# Linux's numbers (the same on every architecture), by the names config.json's process.rlimits
# uses; RLIMIT_OFILE is BSD's name of RLIMIT_NOFILE, which Python's resource module accepts too.
RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
           "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_OFILE": 7, "RLIMIT_MEMLOCK": 8,
           "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12,
           "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}
RLIM_INFINITY = (1 << 64) - 1


def setrlimit(resource: int, soft: int, hard: int, *, what: str = "setrlimit") -> None:
    """prlimit(2) on this process. Limits are the kernel's unsigned 64-bit values: at or above
    2**63 (RLIM_INFINITY is 2**64-1, what runc passes for "unlimited") is no limit."""
    soft, hard = (RLIM_INFINITY if v >= 1 << 63 else v for v in (soft, hard))
    _call(_native.prlimit, resource, soft, hard, what=what)


def getrlimit(resource: int) -> tuple[int, int]:
    return _call(_native.prlimit, resource, what="getrlimit")


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_new_session_keyring(name: str) -> None:
    """A fresh session keyring, so the container cannot read the caller's keys (runc's default)."""
    _call(_native.join_session_keyring, name, what="keyctl(JOIN_SESSION_KEYRING)")


# Process attributes and idmapped mounts (rootless.process.attrs, rootless.rootfs.apply).
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_IDMAP = 0x100000
IOPRIO_WHO_PROCESS = 1


def personality(persona: int) -> None:
    _call(_native.personality, persona, what=f"personality({persona:#x})")


def sched_setattr(policy: int, flags: int, nice: int, priority: int, runtime: int, deadline: int,
                  period: int, *, hint: str | None = None) -> None:
    """sched_setattr(2) of this thread, struct sched_attr's first version (no utilization clamps)."""
    _call(_native.sched_setattr, policy, flags, nice, priority, runtime, deadline, period, what="sched_setattr",
          hint=hint)


def ioprio_set(value: int, *, hint: str | None = None) -> None:
    _call(_native.ioprio_set, IOPRIO_WHO_PROCESS, 0, value, what="ioprio_set", hint=hint)


def open_tree(dirfd: int, path: str, flags: int, *, shown: str) -> int:
    return _call(_native.open_tree, dirfd, path, flags | os.O_CLOEXEC, what="open_tree", path=shown)


def mount_setattr_idmap(fd: int, userns_fd: int, recursive: bool, *, shown: str) -> None:
    """Idmap the detached mount open at fd with the ID maps of the user namespace at userns_fd."""
    _call(_native.mount_setattr, fd, AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0), MOUNT_ATTR_IDMAP, 0,
          userns_fd, what="mount_setattr(MOUNT_ATTR_IDMAP)", path=shown)


def move_mount(fd: int, target_fd: int, *, shown: str) -> None:
    """Attach the detached mount open at fd on the directory open at target_fd (O_PATH is fine)."""
    _call(_native.move_mount, fd, target_fd, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH, what="move_mount",
          path=shown)


PROC_SUPER_MAGIC = 0x9FA0


def fstatfs_type(fd: int, shown: str) -> int:
    """f_type of the filesystem fd lies on (fstatfs(2)): which kernel filesystem it really is."""
    return _call(_native.fstatfs_type, fd, what="fstatfs", path=shown)


SECCOMP_SET_MODE_FILTER = 1


def seccomp_set_filter(program: bytes, flags: int) -> int:
    """Load a classic BPF program (struct sock_filter, 8 bytes each) as this thread's seccomp
    filter. Returns what the kernel returns: the listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER,
    else 0. Allocates nothing Python must import: safe after pivot_root."""
    return _call(_native.seccomp_set_filter, program, flags, what="seccomp(SECCOMP_SET_MODE_FILTER)")


def set_mempolicy(mode: int, nodes: list[int], *, hint: str | None = None) -> None:
    """set_mempolicy(2): mode (with its MPOL_F_* flags ORed in) and the node mask."""
    maxnode = (max(nodes) + 1) if nodes else 0
    mask = None
    if nodes:  # unsigned longs, each in the machine's byte order
        bits = _mask(nodes)
        mask = b"".join((bits >> shift & (1 << 64) - 1).to_bytes(8, sys.byteorder)
                        for shift in range(0, 64 * ((maxnode + 63) // 64), 64))
    # The kernel reads maxnode - 1 bits (a historical off-by-one every caller adds one for).
    _call(_native.set_mempolicy, mode, mask, maxnode + 1 if nodes else 0, what="set_mempolicy", hint=hint)


# bpf(2): only what the device filter of a root container's cgroup needs
# (rootless.cgroups.devices).
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


def bpf_prog_load_cgroup_device(code: bytes, license: str, *, shown: str) -> int:
    """BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program (struct bpf_insn, 8 bytes each);
    returns its fd. A refusal is tried once more with the verifier's log, to say why (a log
    too small for the verifier's words fails the load itself: ENOSPC)."""
    call = "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE)"
    try:
        fd = _native.bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, code, license.encode() + b"\0")
    except OSError as err:
        if err.errno == errno.EPERM:
            raise SyscallError(call, err.errno, shown) from None
        log = bytearray(1 << 16)
        try:
            retried = _native.bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, code, license.encode() + b"\0", log)
        except OSError:
            said = log.partition(b"\0")[0].decode(errors="replace").strip().splitlines()
            raise SyscallError(call, err.errno, shown, f"verifier: {said[-1]}" if said else None) from None
        os.close(retried)  # (not seen: a load that fails once and passes with a log)
        raise SyscallError(call, err.errno, shown) from None
    os.set_inheritable(fd, False)
    return fd


def bpf_prog_attach_cgroup_device(prog_fd: int, cgroup_fd: int, *, shown: str) -> None:
    """BPF_PROG_ATTACH as BPF_CGROUP_DEVICE with BPF_F_ALLOW_MULTI: beside any program already
    attached (systemd's), never in place of it."""
    _call(_native.bpf_prog_attach, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI,
          what="bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)", path=shown)


# The container's terminal (rootless.terminal.ctty) and its loopback interface (netns.loopback).

def tty_clear_onlcr(fd: int) -> None:
    """No CR before each LF on output: what runc sets for a pty its own process relays."""
    _call(_native.tty_clear_onlcr, fd, what="tcsetattr(~ONLCR)")


def tty_set_winsize(fd: int, rows: int, cols: int) -> None:
    _call(_native.tty_set_winsize, fd, rows, cols, what="ioctl(TIOCSWINSZ)")


def tty_set_ctty(fd: int) -> None:
    """The terminal at fd becomes this session's controlling terminal."""
    _call(_native.tty_set_ctty, fd, what="ioctl(TIOCSCTTY)")


def interface_up(name: str) -> None:
    """`ip link set NAME up` in this network namespace: SIOCGIFFLAGS, then SIOCSIFFLAGS with
    IFF_UP unless it is up already (on a datagram socket: no netlink library)."""
    _call(_native.interface_up, name.encode(), what="ioctl(SIOCSIFFLAGS, IFF_UP)", path=name)
