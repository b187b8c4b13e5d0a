"""rootless/linux/syscalls.py on both of its backends: the extension module
(rootless/linux/_native.c, which tests/run always builds: gcc and python3-dev are among
packaging/install-deps' packages; the tests take it from the installed package, as the source
tree has none) and its ctypes twin (rootless/linux/libc.py). Each call is
made through syscalls.py with one backend, then the other, and must do the same thing and fail
with the same words. Whatever changes the process runs in a forked child, in new namespaces of
an unprivileged user namespace where it needs privilege (as the test user or as root alike)."""

import errno
import fcntl
import importlib.util
import os
import resource
import socket
import struct
import subprocess
import sys
import sysconfig
import termios
import traceback
from pathlib import Path

import pytest

from rootless.errors import SyscallError
from rootless.linux import libc, syscalls as sc

BACKENDS = ("native", "ctypes")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native":
        monkeypatch.setattr(sc, "_native", installed_extension())
    else:
        monkeypatch.setattr(sc, "_native", libc)
    return request.param


def in_child(function):
    """function() in a forked child; its result (repr) or its exception's text comes back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            message = "ok " + repr(function())
        except BaseException:
            message = "error " + traceback.format_exc()
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    assert message.startswith("ok "), message
    return message[3:]


def error_of(call) -> str:
    with pytest.raises(SyscallError) as info:
        call()
    return str(info.value)


def messages(call) -> dict[str, str]:
    """The SyscallError text of `call` with each backend."""
    seen = {}
    for name, module in (("native", installed_extension()), ("ctypes", libc)):
        saved = sc._native
        sc._native = module
        try:
            seen[name] = error_of(call)
        finally:
            sc._native = saved
    return seen


_loaded = []


def installed_extension():
    """rootless/linux/_native of the installed package (the venv running the tests)."""
    if not _loaded:
        path = Path(sysconfig.get_paths()["purelib"], "rootless", "linux", "_native" + sysconfig.get_config_var("EXT_SUFFIX"))
        if not path.is_file():
            pytest.fail(f"{path} is missing: rootless/linux/_native.c did not build (see pip's output in tests/run)")
        spec = importlib.util.spec_from_file_location("rootless.linux._native", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded.append(module)
    return _loaded[0]


def test_the_installed_package_uses_the_extension_unless_told_not_to() -> None:
    code = "from rootless.linux import syscalls as sc; print(sc.NATIVE, sc._native.__name__)"
    for env, expected in (({}, "True rootless.linux._native"), ({"ROOTLESS_NO_NATIVE": "1"}, "False rootless.linux.libc")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/",
                             env={"PATH": "/usr/bin:/bin", **env}).stdout
        assert out.strip() == expected


@pytest.mark.parametrize("call, expected", [
    (lambda: sc.mount("/nonexistent/src", "/nonexistent/dst", None, sc.MS_BIND),
     "mount /nonexistent/src `/nonexistent/dst`: No such file or directory"),
    (lambda: sc.mount(None, "/nonexistent/dst", "tmpfs", 0, "size=1m", shown_target="/dst"),
     "mount tmpfs `/dst`: No such file or directory"),
    (lambda: sc.umount2("/nonexistent/dst", sc.MNT_DETACH), "umount2 `/nonexistent/dst`: No such file or directory"),
    (lambda: sc.pivot_root("/nonexistent", "/nonexistent/old"), "pivot_root `/nonexistent`: No such file or directory"),
    (lambda: sc.openat2(os.open("/", os.O_PATH), "no/such", os.O_RDONLY, sc.RESOLVE_IN_ROOT, shown="/no/such"),
     "openat2 `/no/such`: No such file or directory"),
    (lambda: sc.open_tree(-100, "/nonexistent", sc.OPEN_TREE_CLONE, shown="/x"), "open_tree `/x`: No such file or directory"),
    (lambda: sc.setns(9999, 0, "/proc/1/ns/net"), "setns `/proc/1/ns/net`: Bad file descriptor"),
    (lambda: sc.fstatfs_type(9999, "/proc"), "fstatfs `/proc`: Bad file descriptor"),
    (lambda: sc.move_mount(9999, 9998, shown="/m"), "move_mount `/m`: Bad file descriptor"),
    (lambda: sc.mount_setattr_recursive(9999, sc.MOUNT_ATTR_RDONLY, 0, shown="/r"), "mount_setattr `/r`: Bad file descriptor"),
    (lambda: sc.mount_setattr_idmap(9999, 9998, True, shown="/i"),
     "mount_setattr(MOUNT_ATTR_IDMAP) `/i`: Bad file descriptor"),
    (lambda: sc.prctl(sc.PR_CAPBSET_DROP, 4096, what="prctl(PR_CAPBSET_DROP, 4096)"),
     "prctl(PR_CAPBSET_DROP, 4096): Invalid argument"),
    (lambda: sc.sched_setattr(99, 0, 0, 0, 0, 0, 0, hint="h"), "sched_setattr: Invalid argument (h)"),
    (lambda: sc.ioprio_set(-1), "ioprio_set: Invalid argument"),
    (lambda: sc.seccomp_set_filter(b"", 0), "seccomp(SECCOMP_SET_MODE_FILTER): Invalid argument"),
    (lambda: sc.set_mempolicy(99, [0]), "set_mempolicy: Invalid argument"),
    (lambda: sc.setrlimit(sc.RLIMITS["RLIMIT_NOFILE"], 2, 1, what="setrlimit RLIMIT_NOFILE soft=2 hard=1"),
     "setrlimit RLIMIT_NOFILE soft=2 hard=1: Invalid argument"),
    (lambda: sc.tty_clear_onlcr(9999), "tcsetattr(~ONLCR): Bad file descriptor"),
    (lambda: sc.tty_set_winsize(9999, 1, 1), "ioctl(TIOCSWINSZ): Bad file descriptor"),
    (lambda: sc.tty_set_ctty(9999), "ioctl(TIOCSCTTY): Bad file descriptor"),
    (lambda: sc.interface_up("nosuch0"), "ioctl(SIOCSIFFLAGS, IFF_UP) `nosuch0`: No such device"),
])
def test_both_backends_fail_in_the_same_words(call, expected: str) -> None:
    assert messages(call) == {"native": expected, "ctypes": expected}


def test_unshare_hint_names_the_sysctl(backend: str) -> None:
    def child():
        # CLONE_NEWUSER with a flag unshare does not take: EINVAL, which may mean a disabled sysctl.
        return error_of(lambda: sc.unshare(sc.CLONE_NEWUSER | 0x1))
    text = in_child(child)
    assert "unshare: Invalid argument (are unprivileged user namespaces enabled?" in text


def test_prlimit_round_trip(backend: str) -> None:
    """What setrlimit sets, getrlimit and Python's resource module read back."""
    def child():
        nofile = sc.RLIMITS["RLIMIT_NOFILE"]
        before = sc.getrlimit(nofile)
        same = before == resource.getrlimit(resource.RLIMIT_NOFILE)
        sc.setrlimit(nofile, 77, before[1])
        first = sc.getrlimit(nofile), resource.getrlimit(resource.RLIMIT_NOFILE)
        sc.setrlimit(nofile, 10, 20)
        return same, first == ((77, before[1]),) * 2, resource.getrlimit(resource.RLIMIT_NOFILE)
    assert in_child(child) == repr((True, True, (10, 20)))


def test_infinity_above_two_to_the_63(backend: str) -> None:
    def child():
        cpu = sc.RLIMITS["RLIMIT_CPU"]
        if resource.getrlimit(resource.RLIMIT_CPU)[1] != resource.RLIM_INFINITY:
            return "host limits CPU"
        sc.setrlimit(cpu, 1 << 63, 2**64 - 1)
        return sc.getrlimit(cpu), resource.getrlimit(resource.RLIMIT_CPU)
    assert in_child(child) == repr(((2**64 - 1, 2**64 - 1), (-1, -1)))


def status_caps() -> tuple[int, int, int]:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return tuple(int(fields[k], 16) for k in ("CapEff", "CapPrm", "CapInh"))


def test_capset_of_the_current_sets_and_fewer(backend: str) -> None:
    """In a new user namespace the child holds every capability: it sets the sets it has, then
    drops CAP_KILL (5) from effective and permitted and makes CAP_SETGID (6) the only
    inheritable one, and the kernel's /proc/self/status shows exactly that; CAP_KILL cannot come
    back once it is no longer permitted."""
    def child():
        sc.unshare(sc.CLONE_NEWUSER)
        effective, permitted, inheritable = sc.capget()
        mask = lambda numbers: sum(1 << n for n in numbers)
        read_right = status_caps() == (mask(effective), mask(permitted), mask(inheritable))
        sc.capset(effective, permitted, inheritable)
        sc.capset(effective - {5}, permitted - {5}, {6})
        after = status_caps() == (mask(effective - {5}), mask(permitted - {5}), 1 << 6)
        refused = error_of(lambda: sc.capset(effective, permitted, set()))
        return {5, 6} <= effective, read_right, after, refused
    assert in_child(child) == repr((True, True, True, "capset: Operation not permitted"))


def test_prctl_returns_the_kernels_answer(backend: str) -> None:
    def child():
        sc.set_dumpable(False)
        off = sc.prctl(3)  # PR_GET_DUMPABLE
        sc.set_dumpable(True)
        return off, sc.prctl(3), sc.capbset_knows(0), sc.capbset_knows(4000)
    assert in_child(child) == repr((0, 1, True, False))


def test_namespaced_calls(backend: str) -> None:
    """hostname, domain name, a tmpfs mount (seen by fstatfs), its read-only flag by
    mount_setattr, umount, lo up: in new namespaces of a new user namespace."""
    def child():
        sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWUTS | sc.CLONE_NEWNS | sc.CLONE_NEWNET)
        sc.sethostname("native-test")
        sc.setdomainname("example.org")
        with open("/proc/sys/kernel/domainname") as f:
            domain = f.read().strip()
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        target = "/tmp"
        host_type = sc.fstatfs_type(os.open(target, os.O_PATH), target)
        sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID, "size=1m")
        fd = os.open(target, os.O_PATH)
        is_tmpfs = sc.fstatfs_type(fd, target) == 0x01021994
        tree = sc.open_tree(fd, "", sc.OPEN_TREE_CLONE | 0x1000, shown=target)  # AT_EMPTY_PATH
        sc.mount_setattr_recursive(tree, sc.MOUNT_ATTR_RDONLY, 0, shown=target)
        sc.move_mount(tree, fd, shown=target)
        with pytest.raises(OSError) as info:
            open(f"{target}/file", "w")
        read_only = info.value.errno == errno.EROFS
        sc.umount2(target, sc.MNT_DETACH)
        sc.umount2(target, sc.MNT_DETACH)
        back = sc.fstatfs_type(os.open(target, os.O_PATH), target) == host_type
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            def flags():
                request = struct.pack("16sH14x", b"lo", 0)
                return struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), 0x8913, request))[1] & 1
            before = flags()
            sc.interface_up("lo")
            sc.interface_up("lo")  # up already: nothing to do
            after = flags()
        return os.uname().nodename, domain, is_tmpfs, read_only, back, before, after
    assert in_child(child) == repr(("native-test", "example.org", True, True, True, 0, 1))


def test_terminal_calls(backend: str) -> None:
    def child():
        master, slave = os.openpty()
        onlcr_before = bool(termios.tcgetattr(slave)[1] & termios.ONLCR)
        sc.tty_clear_onlcr(slave)
        onlcr_after = bool(termios.tcgetattr(slave)[1] & termios.ONLCR)
        sc.tty_set_winsize(slave, 23, 71)
        size = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        os.setsid()
        sc.tty_set_ctty(slave)
        controlling = os.tcgetpgrp(slave) == os.getpid()
        return onlcr_before, onlcr_after, size, controlling
    assert in_child(child) == repr((True, False, (23, 71), True))


def test_close_range_closes_and_marks(backend: str) -> None:
    def child():
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(4)]
        for fd in fds:
            os.set_inheritable(fd, True)
        sc.close_range(fds[2], on_exec=True)
        marked = [os.get_inheritable(fd) for fd in fds]
        sc.close_range(fds[1], fds[1])
        closed = []
        for fd in fds:
            try:
                os.fstat(fd)
                closed.append(False)
            except OSError:
                closed.append(True)
        return marked, closed
    assert in_child(child) == repr(([True, True, False, False], [False, True, False, False]))


def test_seccomp_personality_keyring(backend: str) -> None:
    def child():
        sc.set_no_new_privs()
        # One instruction: allow every call.
        allow = struct.pack("HBBI", 0x06, 0, 0, 0x7FFF0000)  # BPF_RET | BPF_K, SECCOMP_RET_ALLOW
        result = sc.seccomp_set_filter(allow, 0)
        with open("/proc/self/status") as f:
            mode = [line.split()[1] for line in f if line.startswith("Seccomp:")][0]
        sc.personality(0x0008)  # PER_LINUX32
        with open("/proc/self/personality") as f:
            persona = f.read().strip()
        try:
            sc.join_new_session_keyring("native-test-keyring")
            keyring = "joined"
        except SyscallError as err:  # keyrings may be off in this kernel or this namespace
            keyring = "refused" if err.errno in (errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EDQUOT) else str(err)
        return result, mode, persona, keyring
    result, mode, persona, keyring = eval(in_child(child))
    assert (result, mode, persona) == (0, "2", "00000008") and keyring in ("joined", "refused")


@pytest.mark.skipif(not os.path.exists("/proc/self/numa_maps"), reason="a kernel without NUMA (CONFIG_NUMA)")
def test_set_mempolicy_bind_to_node_zero(backend: str) -> None:
    """The task's policy shows in numa_maps for every mapping without a policy of its own."""
    def child():
        sc.set_mempolicy(2, [0])  # MPOL_BIND
        with open("/proc/self/numa_maps") as f:
            bound = f.readline().split()[1]
        sc.set_mempolicy(0, [])  # MPOL_DEFAULT
        with open("/proc/self/numa_maps") as f:
            default = f.readline().split()[1]
        return bound, default
    assert in_child(child) == repr(("bind:0", "default"))


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF_PROG_LOAD of a cgroup program needs root")
def test_bpf_refusal_says_what_the_verifier_said() -> None:
    # A program without an exit: the verifier refuses it, and the retry with a log says why.
    no_exit = struct.pack("<BBhi", 0xB7, 0, 0, 0)  # r0 = 0, then nothing
    seen = messages(lambda: sc.bpf_prog_load_cgroup_device(no_exit, "Apache-2.0", shown="/cg"))
    assert seen["native"] == seen["ctypes"]
    assert seen["native"].startswith("bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE) `/cg`: ")
    assert "(verifier: " in seen["native"]
