"""Seccomp: check() without libseccomp, compile() of real profiles, and filters loaded in forked
children to see what they do (the test process itself never loads one)."""

import copy
import ctypes
import errno
import importlib.util
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rootless.process import seccomp
from rootless.linux import syscalls as sc
from rootless.errors import ConfigError, RootlessError, SyscallError

REPO = Path(__file__).resolve().parents[2]
needs_libseccomp = pytest.mark.skipif(importlib.util.find_spec("pyseccomp") is None,
                                      reason="pyseccomp is not installed (pip install pyseccomp)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, setuid)")

PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_SET_NAME, PR_GET_NO_NEW_PRIVS = 3, 4, 8, 15, 39
ADDR_NO_RANDOMIZE = 0x0040000
# clone with any CLONE_NEW* flag: the mask docker's and podman's profiles test with MASKED_EQ.
CLONE_NEW_MASK = 0x7E020000

SPEC_EXAMPLE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [{"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO"}],
}

# The names podman 4.3 (containers/common) allows unconditionally, as in the config.json it hands
# to its runtime; `clone` goes to a MASKED_EQ rule below instead, as in docker's profile.
PODMAN_ALLOWED = """
_llseek _newselect accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 clone3 close close_range connect copy_file_range creat
dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsconfig fsetxattr fsmount fsopen fspick fstat
fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futimesat
get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid
getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_setup io_submit ioctl ioprio_get
ioprio_set ipc keyctl kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr lstat
lstat64 madvise mbind membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
mlock2 mlockall mmap mmap2 mount mount_setattr move_mount mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl
msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat open
open_tree openat openat2 pause pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2 pivot_root
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease process_vm_readv process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev
pwritev2 read readahead readdir readlink readlinkat readv reboot recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 request_key
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max
sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto set_mempolicy set_robust_list set_thread_area
set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt shmget
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs syscall sysinfo syslog
tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd timerfd_create timerfd_gettime timerfd_gettime64
timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask umount umount2
uname unlink unlinkat unshare utime utimensat utimensat_time64 utimes vfork wait4 waitid waitpid
write writev
""".split()
PODMAN_ERRNO_EPERM = """
bdflush io_pgetevents kexec_file_load kexec_load migrate_pages move_pages nfsservctl nice oldfstat
oldlstat oldolduname oldstat olduname pciconfig_iobase pciconfig_read pciconfig_write sgetmask
ssetmask swapcontext swapoff swapon sysfs uselib userfaultfd ustat vm86 vm86old vmsplice acct
open_by_handle_at bpf fanotify_init lookup_dcookie perf_event_open quotactl setdomainname
sethostname setns delete_module finit_module init_module query_module kcmp process_madvise ioperm
iopl clock_settime clock_settime64 settimeofday stime vhangup
""".split()
# Names of newer kernels than some libseccomp knows, and one that no libseccomp will.
NEWER_NAMES = ["statmount", "listmount", "mseal"]


def eq(index: int, value: int) -> dict:
    return {"index": index, "value": value, "op": "SCMP_CMP_EQ"}


def podman_profile(default_errno: int = errno.ENOSYS, drop: tuple[str, ...] = ()) -> dict:
    """A profile shaped like the one podman hands its runtime: ERRNO(ENOSYS) by default, ~375
    allowed names, EPERM rules, argument rules on personality, clone and socket."""
    allowed = [name for name in PODMAN_ALLOWED if name not in drop]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": default_errno,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": PODMAN_ERRNO_EPERM, "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": allowed + NEWER_NAMES, "action": "SCMP_ACT_ALLOW"},
            *({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, value)]}
              for value in (0, 8, 131072, 131080, 4294967295)),
            {"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": CLONE_NEW_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [eq(0, 16), eq(2, 9)]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
        ],
    }


def pfc(filt) -> str:
    """libseccomp's pseudo filter code: what the filter tests, readable."""
    with tempfile.TemporaryFile() as out:
        filt.filter.export_pfc(out)
        out.seek(0)
        return out.read().decode()


def in_child(body, *, no_new_privs: bool = True) -> tuple[int, object]:
    """Run body() in a forked child; return (wait status, what body returned, through JSON).
    The child sets no_new_privs first unless told not to (loading a filter needs it or
    CAP_SYS_ADMIN) and leaves with os._exit, so pytest's state is never torn down twice."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            if no_new_privs:
                sc.set_no_new_privs()
            out = json.dumps(body())
        except BaseException as err:        # reported to the parent
            out = json.dumps(f"{type(err).__name__}: {err}")
        try:
            os.write(write_end, out.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    return status, json.loads(data) if data else None


def errno_of(call, *args) -> int:
    """0 when call(*args) succeeds, else the errno it failed with."""
    try:
        call(*args)
    except (OSError, SyscallError) as err:
        return err.errno
    return 0


# check(): pure validation, one ConfigError line naming the field.

def test_check_accepts_the_spec_example_and_a_podman_profile():
    seccomp.check(SPEC_EXAMPLE)
    seccomp.check(podman_profile())


def _with(change) -> dict:
    config = copy.deepcopy(podman_profile())
    change(config)
    return config


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("defaultAction"), "linux.seccomp.defaultAction: is required"),
    (lambda c: c.update(defaultAction="SCMP_ACT_FOO"), 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"'),
    (lambda c: c.update(defaultAction="SCMP_ACT_NOTIFY"), "defaultAction: SCMP_ACT_NOTIFY cannot be the default"),
    (lambda c: c.update(defaultErrnoRet=-1), "linux.seccomp.defaultErrnoRet: must be an integer from 0 to 4095"),
    (lambda c: c.update(defaultErrnoRet=4096), "defaultErrnoRet: must be an integer from 0 to 4095"),
    (lambda c: c.update(defaultErrnoRet=True), "defaultErrnoRet: must be an integer"),
    (lambda c: c["architectures"].append("SCMP_ARCH_VAX"),
     'linux.seccomp.architectures[3]: unknown architecture "SCMP_ARCH_VAX"'),
    (lambda c: c.update(architectures="SCMP_ARCH_X86"), "linux.seccomp.architectures: must be a list"),
    (lambda c: c.update(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
     'linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"'),
    (lambda c: c.update(syscalls={}), "linux.seccomp.syscalls: must be a list"),
    (lambda c: c["syscalls"].append("mkdir"), "linux.seccomp.syscalls[12]: must be an object"),
    (lambda c: c["syscalls"][3].update(action="SCMP_ACT_FOO"),
     'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"'),
    (lambda c: c["syscalls"][3].pop("action"), "linux.seccomp.syscalls[3].action: is required"),
    (lambda c: c["syscalls"][1].update(names="mkdir"), "linux.seccomp.syscalls[1].names: must be a list"),
    (lambda c: c["syscalls"][1]["names"].insert(2, 5), "linux.seccomp.syscalls[1].names[2]: must be a string"),
    (lambda c: c["syscalls"][0].update(errnoRet=5000),
     "linux.seccomp.syscalls[0].errnoRet: must be an integer from 0 to 4095"),
    (lambda c: c["syscalls"][0].update(action="SCMP_ACT_TRACE", errnoRet=70000), "from 0 to 65535 for SCMP_ACT_TRACE"),
    (lambda c: c["syscalls"][2]["args"][0].update(op="SCMP_CMP_FOO"),
     'linux.seccomp.syscalls[2].args[0].op: unknown operator "SCMP_CMP_FOO"'),
    (lambda c: c["syscalls"][2]["args"][0].pop("op"), "linux.seccomp.syscalls[2].args[0].op: unknown operator None"),
    (lambda c: c["syscalls"][2]["args"][0].update(index=6),
     "linux.seccomp.syscalls[2].args[0].index: must be an argument index from 0 to 5"),
    (lambda c: c["syscalls"][2]["args"][0].update(value=-1),
     "linux.seccomp.syscalls[2].args[0].value: must be an unsigned 64-bit integer"),
    (lambda c: c["syscalls"][2]["args"][0].update(value=1 << 64), "args[0].value: must be an unsigned 64-bit integer"),
    (lambda c: c["syscalls"][2]["args"][0].pop("value"), "args[0].value: must be an unsigned 64-bit integer, not None"),
    (lambda c: c["syscalls"][2]["args"][0].update(valueTwo="0"), "args[0].valueTwo: must be an unsigned 64-bit integer"),
    (lambda c: c["syscalls"][2].update(args=[{"index": i % 6, "value": 0, "op": "SCMP_CMP_EQ"} for i in range(7)]),
     "linux.seccomp.syscalls[2].args: 7 conditions, at most 6"),
    (lambda c: c["syscalls"][2].update(args=[1]), "linux.seccomp.syscalls[2].args[0]: must be an object"),
    (lambda c: c["syscalls"][3].update(action="SCMP_ACT_NOTIFY"),
     "linux.seccomp.syscalls[3].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"),
    (lambda c: c.update(listenerPath="/run/agent.sock")
     or c["syscalls"].append({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}),
     "linux.seccomp.syscalls[12].action: SCMP_ACT_NOTIFY cannot be used for write"),
])
def test_check_names_the_field(change, message):
    with pytest.raises(ConfigError) as caught:
        seccomp.check(_with(change))
    text = str(caught.value)
    assert text.startswith("config.json: linux.seccomp")
    assert message in text
    assert "\n" not in text


def test_check_of_a_non_object():
    with pytest.raises(ConfigError, match="^config.json: linux.seccomp: must be an object$"):
        seccomp.check(["SCMP_ACT_ALLOW"])


def test_check_accepts_every_spec_action_flag_arch_and_operator():
    for action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                   "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        seccomp.check({"defaultAction": action})
    seccomp.check({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 65535})
    seccomp.check({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    seccomp.check({"defaultAction": "SCMP_ACT_ALLOW", "flags": list(seccomp.FLAGS),
                   "architectures": list(seccomp.ARCHITECTURES)})
    seccomp.check({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mmap"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": i, "value": 1, "valueTwo": 1, "op": op} for i, op in enumerate(seccomp.OPERATORS) if i < 6]}]})


def test_importing_the_module_and_check_load_no_libseccomp():
    code = ("import sys, rootless.process.seccomp as s; s.check({'defaultAction': 'SCMP_ACT_ERRNO', 'syscalls': "
            "[{'names': ['read'], 'action': 'SCMP_ACT_ALLOW'}]}); "
            "print(sorted(m for m in ('pyseccomp', 'ctypes', 'subprocess') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# compile(): a filter in libseccomp's memory, and warnings.

@needs_libseccomp
def test_compile_the_spec_example():
    filt, warnings = seccomp.compile(SPEC_EXAMPLE)
    assert warnings == []
    for arch in ("SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"):
        assert filt.filter.exist_arch(seccomp.ARCHITECTURES[arch])
    code = pfc(filt)
    assert '"getcwd"' in code and '"chmod"' in code and "action ERRNO(1);" in code


@needs_libseccomp
def test_compile_a_podman_profile_skips_newer_names_with_a_warning():
    import pyseccomp
    filt, warnings = seccomp.compile(podman_profile())
    newer = [name for name in NEWER_NAMES if pyseccomp.resolve_syscall(0, name) == -1]
    if newer:
        assert warnings == [f"seccomp: ignored {len(newer)} syscall name(s) this libseccomp does not know: "
                            + ", ".join(f'"{name}"' for name in newer)]
    assert filt.filter.get_attr(1) == 0x00050000 | errno.ENOSYS      # SCMP_FLTATR_ACT_DEFAULT
    assert filt.filter.get_attr(3) == 0                                 # libseccomp sets no no_new_privs
    assert filt.filter.get_attr(8) == 2                                 # binary tree over syscall numbers
    code = pfc(filt)
    assert "action ERRNO(1);" in code and "action ERRNO(22);" in code
    assert '"personality"' in code and '"clone"' in code


@needs_libseccomp
@pytest.mark.parametrize("action, errno_ret, value", [
    ("SCMP_ACT_ERRNO", None, 0x00050000 | errno.EPERM),
    ("SCMP_ACT_ERRNO", 38, 0x00050000 | 38),
    ("SCMP_ACT_KILL", None, 0x00000000),
    ("SCMP_ACT_KILL_THREAD", None, 0x00000000),
    ("SCMP_ACT_KILL_PROCESS", None, 0x80000000),
    ("SCMP_ACT_TRAP", None, 0x00030000),
    ("SCMP_ACT_ALLOW", None, 0x7FFF0000),
    ("SCMP_ACT_LOG", None, 0x7FFC0000),
    ("SCMP_ACT_TRACE", 7, 0x7FF00007),
])
def test_compile_default_actions(action, errno_ret, value):
    config = {"defaultAction": action, "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]}
    if errno_ret is not None:
        config["defaultErrnoRet"] = errno_ret
    filt, _ = seccomp.compile(config)
    assert filt.filter.get_attr(1) == value


@needs_libseccomp
def test_compile_notify_rule():
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    assert "action 0x7fc00000;" in pfc(filt)         # libseccomp 2.5 prints NOTIFY as its number


@needs_libseccomp
def test_compile_flags():
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})
    assert (filt.filter.get_attr(4), filt.filter.get_attr(6), filt.filter.get_attr(7)) == (1, 1, 1)
    # libseccomp 2.6 and Linux 6.0 know this one; an older library is named in the error.
    try:
        seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})
    except ConfigError as err:
        assert str(err).startswith("config.json: linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV "
                                   "is not supported by this libseccomp")


@needs_libseccomp
def test_compile_an_architecture_this_libseccomp_lacks_names_it():
    try:
        seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_SHEB"]})
    except ConfigError as err:
        assert str(err).startswith("config.json: linux.seccomp.architectures[0]: SCMP_ARCH_SHEB is not supported")


@needs_libseccomp
def test_compile_skips_rules_with_the_default_action():
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},                   # ERRNO(EPERM) twice
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]})
    code = pfc(filt)
    assert '"getppid"' in code and '"mkdir"' not in code and '"rmdir"' not in code


@needs_libseccomp
def test_compile_splits_a_rule_that_tests_one_argument_twice():
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}]})
    code = pfc(filt)
    assert "$a0.lo32 == 8" in code and "$a0.lo32 == 9" in code


@needs_libseccomp
def test_compile_checks_first():
    with pytest.raises(ConfigError, match='defaultAction: unknown action "SCMP_ACT_FOO"'):
        seccomp.compile({"defaultAction": "SCMP_ACT_FOO"})


# Filters at work, each in a forked child.

@needs_libseccomp
def test_errno_rule_fails_mkdir_in_the_child_only(tmp_path):
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})

    def child():
        seccomp.load(filt)
        return errno_of(os.mkdir, tmp_path / "child")

    assert in_child(child) == (0, errno.EPERM)
    assert not (tmp_path / "child").exists()
    os.mkdir(tmp_path / "parent")


@needs_libseccomp
def test_argument_rules():
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        # both conditions on argument 0: two rules, either one matches (runc's split)
        {"names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
         "args": [{"index": 0, "value": PR_SET_KEEPCAPS, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": PR_SET_NAME, "op": "SCMP_CMP_EQ"}]},
        # conditions on arguments 0 and 1: one rule, both must hold
        {"names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 0, "value": PR_SET_DUMPABLE, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]})

    def child():
        seccomp.load(filt)
        return [errno_of(sc.prctl, PR_SET_KEEPCAPS, 0), errno_of(sc.prctl, PR_SET_NAME, 0),
                errno_of(sc.prctl, PR_SET_DUMPABLE, 0), errno_of(sc.prctl, PR_SET_DUMPABLE, 1),
                errno_of(sc.prctl, PR_GET_DUMPABLE)]

    assert in_child(child) == (0, [errno.EACCES, errno.EACCES, errno.EXDEV, 0, 0])


@needs_libseccomp
def test_a_podman_profile_at_work(tmp_path):
    filt, _ = seccomp.compile(podman_profile())
    libc = ctypes.CDLL(None, use_errno=True)
    libc.personality.argtypes = [ctypes.c_ulong]

    def call(function, *args) -> int:
        ctypes.set_errno(0)
        return 0 if function(*args) != -1 else ctypes.get_errno()

    def child():
        seccomp.load(filt)
        pid = os.fork()                 # clone without CLONE_NEW* passes the MASKED_EQ rule
        if pid == 0:
            os._exit(7)
        forked = os.waitpid(pid, 0)[1]
        return {"personality(0)": call(libc.personality, 0),
                "personality(query)": call(libc.personality, 0xFFFFFFFF),
                "personality(ADDR_NO_RANDOMIZE)": call(libc.personality, ADDR_NO_RANDOMIZE),
                "acct": call(libc.acct, None), "mkdir": errno_of(os.mkdir, tmp_path / "d"),
                "fork": os.waitstatus_to_exitcode(forked)}

    status, result = in_child(child)
    assert status == 0
    assert result == {"personality(0)": 0, "personality(query)": 0,
                      "personality(ADDR_NO_RANDOMIZE)": errno.ENOSYS,     # defaultErrnoRet 38
                      "acct": errno.EPERM, "mkdir": 0, "fork": 7}


@needs_libseccomp
def test_default_errno_ret_is_the_errno_seen(tmp_path):
    filt, _ = seccomp.compile(podman_profile(default_errno=errno.EXDEV, drop=("mkdir", "mkdirat")))

    def child():
        seccomp.load(filt)
        return errno_of(os.mkdir, tmp_path / "d")

    assert in_child(child) == (0, errno.EXDEV)


@needs_libseccomp
def test_kill_process_kills_the_child_with_sigsys(tmp_path):
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]})

    def child():
        sc.set_dumpable(False)              # no core file
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        seccomp.load(filt)
        os.mkdir(tmp_path / "d")
        return "survived"

    status, result = in_child(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
    assert result is None


@needs_libseccomp
@needs_root
def test_a_compiled_filter_loads_after_the_root_changed(tmp_path):
    """As in the init: compile before pivot_root, load after it with nothing to import or read.
    Root, without no_new_privs: CAP_SYS_ADMIN allows the load, and libseccomp sets no
    no_new_privs of its own."""
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
    empty = tmp_path / "empty"
    empty.mkdir()

    class NoImports:
        def find_spec(self, name, path=None, target=None):
            raise ImportError(f"import of {name} after the root switch")

    def child():
        os.chroot(empty)
        os.chdir("/")
        sys.meta_path.insert(0, NoImports())
        before = os.listdir("/")
        seccomp.load(filt)
        return [before, errno_of(os.mkdir, "/d"), os.listdir("/"), sc.prctl(PR_GET_NO_NEW_PRIVS)]

    assert in_child(child, no_new_privs=False) == (0, [[], errno.EPERM, [], 0])


@needs_libseccomp
@needs_root
def test_load_without_privilege_or_no_new_privs_fails_with_a_message():
    filt, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})

    def child():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)                    # no capabilities left
        try:
            seccomp.load(filt)
        except RootlessError as err:
            return str(err)
        return "loaded"

    assert in_child(child, no_new_privs=False) == (
        0, "seccomp: load filter: Permission denied (loading needs no_new_privs or CAP_SYS_ADMIN)")


@pytest.mark.parametrize("change", [
    lambda c: c.update(defaultAction="SCMP_ACT_KILL"),                # defaultErrnoRet beside it
    lambda c: c.update(listenerMetadata="x"),                         # without listenerPath
    lambda c: c["syscalls"][1].update(names=[]),                      # a rule that matches nothing
    lambda c: c["syscalls"][1]["names"].insert(2, ""),
    lambda c: c["syscalls"][1].update(errnoRet=1),                    # beside SCMP_ACT_ALLOW
])
def test_check_accepts_what_runc_and_crun_run(change):
    seccomp.check(_with(change))


@needs_libseccomp
def test_a_name_that_is_no_system_call_is_skipped_as_runc_does():
    """runc and crun skip every name libseccomp cannot resolve; --debug names them."""
    profile = podman_profile()
    profile["syscalls"][1]["names"] = profile["syscalls"][1]["names"] + ["mkdri"]
    profile["syscalls"][1]["errnoRet"] = 7                                 # ignored beside ALLOW
    filt, warnings = seccomp.compile(profile)
    assert '"mkdri"' in warnings[-1] and "does not know" in warnings[-1]
    assert "ERRNO(7)" not in pfc(filt)


# The ENOSYS stub (runc's patchbpf): calls newer than the profile fail with ENOSYS.

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long


def _raw_syscall_errno(number: int) -> int:
    ctypes.set_errno(0)
    return ctypes.get_errno() if _LIBC.syscall(ctypes.c_long(number), 0, 0, 0) == -1 else 0


@needs_libseccomp
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of x86_64")
def test_calls_above_the_profile_get_enosys_and_others_the_default():
    """The profile knows calls up to newfstatat (262 on x86_64): 439 (faccessat2) is newer, so
    ENOSYS; 95 (umask) is older and not allowed, so the default errno."""
    allowed = ["read", "write", "close", "exit", "exit_group", "rt_sigreturn", "mmap", "munmap", "brk",
               "getpid", "getppid", "fstat", "newfstatat", "lseek", "futex", "mprotect"]
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EXDEV,
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    program, _ = seccomp.compile(profile)
    assert len(program.bpf) > len(seccomp._export(program.filter))    # the stub is in front

    def child():
        seccomp.load(program)
        return [_raw_syscall_errno(439), _raw_syscall_errno(95), _raw_syscall_errno(110)]

    assert in_child(child) == (0, [errno.ENOSYS, errno.EXDEV, 0])


@needs_libseccomp
@pytest.mark.parametrize("profile", [
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
     "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS, "architectures": ["SCMP_ARCH_X86_64"],
     "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
], ids=["allow-by-default", "enosys-by-default", "no-architectures"])
def test_no_stub_where_runc_adds_none(profile):
    program, _ = seccomp.compile(profile)
    assert program.bpf == seccomp._export(program.filter)


def test_the_stub_for_x86_64_and_x32():
    """ld arch; jeq x86_64; ja filter; ld nr; jset x32 bit; jgt 100 -> enosys; jgt x32 max -> enosys;
    ret ENOSYS; (filter)."""
    x86_64, x32 = seccomp.ARCHITECTURES["SCMP_ARCH_X86_64"], seccomp.ARCHITECTURES["SCMP_ARCH_X32"]
    stub = seccomp.enosys_stub({x86_64: {x86_64: 100, x32: 0x40000000 | 200}})
    code = [struct.unpack("=HBBI", stub[i:i + 8]) for i in range(0, len(stub), 8)]
    assert code == [(0x20, 0, 0, 4), (0x15, 1, 0, x86_64), (0x05, 0, 0, 5), (0x20, 0, 0, 0),
                    (0x45, 1, 0, 0x40000000), (0x25, 1, 2, 100), (0x25, 0, 1, 0x40000000 | 200),
                    (0x06, 0, 0, 0x00050000 | errno.ENOSYS)]
