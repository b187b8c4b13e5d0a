"""The container's process as runc 1.1.5 makes it, on the same bundle, seen by the container and
its client: terminal output bytes, HOME, `spec --rootless`, seccomp (defaultErrnoRet, the ENOSYS
stub, a listenerPath without NOTIFY rules), hooks' environment, and what current runc adds over
1.1.5 (memory policy, CPU affinity). Where runc cannot run here, the expectation is runc's
documented behaviour. Deliberate differences are in docs/differences-from-runc.md ("Process")."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import static
from helpers.bundle import make_config
from helpers.runtime import RUNC, Runtime
from helpers.terminal import HeldTerminal
from helpers.users import chown_tree

needs_runc = pytest.mark.skipif(not os.access(RUNC, os.X_OK), reason=f"{RUNC} is missing (tests/run installs runc)")


@pytest.fixture
def runc(runtime: Runtime):
    """runc as the same user as `runtime`, with its own state root and work folder."""
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is missing (tests/run installs runc)")
    work = Path(tempfile.mkdtemp(prefix="runc-", dir=runtime.work_dir.parent))
    state = Path(tempfile.mkdtemp(prefix="state-", dir=work))
    os.chmod(work, 0o755)
    chown_tree(work, runtime.user)
    other = Runtime(runtime.mode, runtime.user, RUNC, state, work, runtime.rootfs)
    yield other
    other.cleanup()


def bundle_for(rt: Runtime, args: list[str], **overrides) -> Path:
    """rt.bundle; for a rootless runc with the maps of `runc spec --rootless` (the caller only):
    rootless makes its maps itself."""
    if rt.binary == RUNC and rt.rootless:
        overrides.setdefault("linux", {})
        overrides["linux"] = dict(overrides["linux"],
                                  uidMappings=[{"containerID": 0, "hostID": rt.user.uid, "size": 1}],
                                  gidMappings=[{"containerID": 0, "hostID": rt.user.gid, "size": 1}])
    return rt.bundle(args, **overrides)


def run_both(runtime: Runtime, runc: Runtime, args: list[str], **overrides) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of `run` on the same config, under rootless then runc."""
    results = []
    for rt in (runtime, runc):
        bundle = bundle_for(rt, args, **overrides)
        result = rt.run("run", "--bundle", bundle, rt.new_id())
        results.append((result.returncode, result.stdout, result.stderr))
    return results


@pytest.fixture(scope="session")
def probe() -> Path:
    """A static tests/helpers/probe.c for the busybox containers (system calls, memory policy)."""
    with static.built("probe") as binary:
        yield binary


def with_probe(runtime: Runtime, probe: Path) -> list[dict]:
    return make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/probe", "type": "bind", "source": str(probe), "options": ["bind", "ro"]}]


# 1. Terminal output: runc clears ONLCR on the pty it proxies for a foreground run or exec, and
# sets the caller's terminal raw but for output processing (OPOST): "\n" reaches a file as "\n"
# and a terminal as "\r\n". A --console-socket receiver gets the pty as the kernel makes it.

def on_terminal(rt: Runtime, args: list, to_file: bool = False) -> bytes:
    """What the runtime command prints, its stdin being a terminal: on that terminal, or
    (to_file) in a file that is its stdout (`runc run | cat`: runc wants a terminal on stdin)."""
    terminal = HeldTerminal(24, 80)
    with tempfile.TemporaryFile() as out:
        run = subprocess.Popen(rt.command(*args), stdin=terminal.slave, stdout=out if to_file else terminal.slave,
                               stderr=terminal.slave, env=rt._env(None), cwd=rt.work_dir, start_new_session=True)
        assert run.wait(timeout=30) == 0
        out.seek(0)
        written = out.read()
    terminal.read_until(b"end", timeout=0 if to_file else 5)
    seen = terminal.seen
    terminal.close()
    return written if to_file else seen


def test_terminal_output_is_runcs_byte_for_byte(runtime: Runtime, runc: Runtime) -> None:
    """The process waits a little before it writes: runc clears ONLCR in its CLI once it has
    received the pty, racing with the process (seen under load)."""
    script = "sleep 0.5; printf 'one\\ntwo\\n'; printf end"

    def run(rt: Runtime, to_file: bool) -> bytes:
        bundle = bundle_for(rt, ["sh", "-c", script], terminal=True)
        return on_terminal(rt, ["run", "--bundle", bundle, rt.new_id()], to_file)

    assert run(runtime, False) == run(runc, False) == b"one\r\ntwo\r\nend"
    assert run(runtime, True) == run(runc, True) == b"one\ntwo\nend"


def test_exec_terminal_output_is_runcs(runtime: Runtime, runc: Runtime) -> None:
    """The process waits a little before it writes: runc clears ONLCR in its CLI once it has
    received the pty, racing with the process (rootless clears it before the process runs)."""
    outputs = []
    for rt in (runtime, runc):
        container_id = rt.new_id()
        rt.run("run", "-d", "--bundle", bundle_for(rt, ["sleep", "600"]), container_id, check=True)
        for to_file in (False, True):
            outputs.append(on_terminal(rt, ["exec", "-t", container_id, "sh", "-c", "sleep 0.5; printf 'a\\nb\\n'; printf end"],
                                       to_file))
        rt.run("delete", "-f", container_id, check=True)
    assert outputs[:2] == outputs[2:] == [b"a\r\nb\r\nend", b"a\nb\nend"]


def test_console_socket_gets_the_pty_as_from_runc(runtime: Runtime, runc: Runtime) -> None:
    from test_io import ConsoleReceiver
    outputs = []
    for rt in (runtime, runc):
        folder = Path(tempfile.mkdtemp(prefix="console-", dir="/tmp"))
        os.chown(folder, rt.user.uid, rt.user.gid)
        receiver = ConsoleReceiver(folder / "sock", (rt.user.uid, rt.user.gid))
        bundle = bundle_for(rt, ["sh", "-c", "read line; printf 'got:%s\\nend\\n' $line"], terminal=True)
        container_id = rt.new_id()
        rt.run("run", "-d", "--console-socket", folder / "sock", "--bundle", bundle, container_id, check=True)
        receiver.thread.join(timeout=20)
        outputs.append(receiver.output)
        rt.run("delete", "-f", container_id, check=True)
        shutil.rmtree(folder)
    assert outputs[0] == outputs[1] == b"typed-in\r\ngot:typed-in\r\nend\r\n"


# 2. HOME from the container's /etc/passwd when process.env has none.

HOME_CASES = [
    # (env, uid, HOME seen)
    (["PATH=/bin"], 0, "/root"),
    (["PATH=/bin", "HOME="], 0, "/root"),
    (["PATH=/bin", "HOME=/custom"], 0, "/custom"),
    (["PATH=/bin"], 65534, "/nonexistent"),
    (["PATH=/bin"], 4321, "/"),
]


@pytest.mark.parametrize("env, uid, home", HOME_CASES, ids=["unset", "empty", "set", "nobody", "unlisted"])
def test_home_comes_from_the_containers_passwd(runtime: Runtime, runc: Runtime, env, uid, home) -> None:
    process = {"env": env, "user": {"uid": uid, "gid": uid}, "capabilities": None}
    script = 'echo "[$HOME]"'
    if uid and runtime.rootless:
        # A rootless runc maps one ID: only uid 0 exists in its container. rootless maps the
        # caller's subordinate range too.
        assert runtime.run_script(script, process=process) == f"[{home}]\n"
        return
    (code, out, err), runc_result = run_both(runtime, runc, ["sh", "-c", script], process=process)
    assert (code, out, err) == runc_result
    assert out == f"[{home}]\n"


def test_exec_gets_home_like_run(runtime: Runtime, runc: Runtime) -> None:
    """exec with the container's process (which has no HOME), with -p, and with -e HOME=."""
    outputs = []
    for rt in (runtime, runc):
        bundle = bundle_for(rt, ["sleep", "600"], process={"env": ["PATH=/bin"]})
        container_id = rt.new_id()
        rt.run("run", "-d", "--bundle", bundle, container_id, check=True)
        process_file = rt.work_dir / "process.json"
        process_file.write_text(json.dumps({"args": ["sh", "-c", 'echo "[$HOME]"'], "cwd": "/",
                                            "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
        chown_tree(process_file, rt.user)
        seen = [rt.run("exec", container_id, "sh", "-c", 'echo "[$HOME]"', check=True).stdout,
                rt.run("exec", "-p", process_file, container_id, check=True).stdout,
                rt.run("exec", "-e", "HOME=", container_id, "sh", "-c", 'echo "[$HOME]"', check=True).stdout,
                rt.run("exec", "-e", "HOME=/x", container_id, "sh", "-c", 'echo "[$HOME]"', check=True).stdout]
        rt.run("delete", "-f", container_id, check=True)
        outputs.append(seen)
    assert outputs[0] == outputs[1] == ["[/root]\n", "[/root]\n", "[/root]\n", "[/x]\n"]


# 3. `spec --rootless` is current runc's template (1.1.5's but for the differences listed here).

def test_spec_rootless_is_runcs(runtime: Runtime, runc: Runtime) -> None:
    texts = []
    for rt in (runtime, runc):
        rt.run("spec", "--rootless", "--bundle", rt.work_dir, check=True)
        texts.append((rt.work_dir / "config.json").read_text())
    ours, theirs = (json.loads(text) for text in texts)
    uid, gid = runtime.user.uid, runtime.user.gid
    assert ours["linux"]["uidMappings"] == [{"containerID": 0, "hostID": uid, "size": 1}]
    assert ours["linux"]["gidMappings"] == [{"containerID": 0, "hostID": gid, "size": 1}]
    assert list(ours["linux"])[:2] == ["uidMappings", "gidMappings"]
    assert list(ours["linux"]["uidMappings"][0]) == ["containerID", "hostID", "size"]
    # Where current runc's template differs from 1.1.5's (docs/differences-from-runc.md, "spec"):
    assert ours["ociVersion"] == "1.2.0" and theirs["ociVersion"] == "1.0.2-dev"
    assert ours["hostname"] == theirs["hostname"] == "runc"
    assert "ambient" not in ours["process"]["capabilities"]       # current runc has none either
    assert ours["linux"]["maskedPaths"] == theirs["linux"]["maskedPaths"] + ["/sys/devices/virtual/tpm"]
    # runc --rootless shares the host's network; a cgroup namespace only on a cgroup v2 host.
    cgroupns = ["cgroup"] if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else []
    assert [ns["type"] for ns in ours["linux"]["namespaces"]] == ["pid", "ipc", "uts", "mount", *cgroupns, "user"]
    assert ours["linux"]["namespaces"] == theirs["linux"]["namespaces"]
    for config in (ours, theirs):
        config["ociVersion"] = None
        config["process"]["capabilities"].pop("ambient", None)
        config["linux"]["maskedPaths"] = [p for p in config["linux"]["maskedPaths"] if p != "/sys/devices/virtual/tpm"]
    assert json.dumps(ours, indent="\t") == json.dumps(theirs, indent="\t")   # key order included
    assert texts[0].startswith('{\n\t"ociVersion"') and texts[0].endswith("\n}")    # runc's tabs, no last newline


def test_a_container_runs_from_spec_rootless(runtime: Runtime) -> None:
    folder = runtime.work_dir
    runtime.run("spec", "--rootless", "--bundle", folder, check=True)
    config = json.loads((folder / "config.json").read_text())
    config["root"]["path"] = str(runtime.rootfs)
    config["process"].update(terminal=False, args=["cat", "/proc/self/uid_map"])
    (folder / "config.json").write_text(json.dumps(config))
    result = runtime.run("run", "--bundle", folder, runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", str(os.geteuid() if not runtime.rootless else runtime.user.uid), "1"]


# 4. seccomp.

# runc's own test profile (tests/integration/testdata/seccomp_syscall_test2.json): everything a
# program needs but clone, defaultErrnoRet ENXIO, no architectures.
RUNC_TEST2_NAMES = """accept accept4 access adjtimex alarm arch_prctl bind brk capget capset chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close connect copy_file_range creat dup dup2 epoll_create epoll_create1 epoll_ctl
epoll_ctl_old epoll_pwait epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl
fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futimesat getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup
ipc kill lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise membarrier memfd_create mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap
mmap2 modify_ldt mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep
newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups
setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork
vmsplice wait4 waitid waitpid write writev""".split()


def runc_test2_profile(**extra) -> dict:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 6,
               "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": list(RUNC_TEST2_NAMES)}]}
    profile.update(extra)
    return profile


def test_default_errno_ret_profile_starts_and_fails_as_runcs(runtime: Runtime, runc: Runtime) -> None:
    """With runc's profile the container starts; sh cannot fork (clone is not listed: ENXIO)."""
    ours, theirs = run_both(runtime, runc, ["sh", "-c", "echo hi; true | true"],
                            linux={"seccomp": runc_test2_profile()})
    assert ours == theirs
    assert ours[:2] == (2, "hi\n") and "can't fork: No such device or address" in ours[2]


def test_created_container_with_default_errno_ret_waits_and_starts(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "echo started"], linux={"seccomp": runc_test2_profile()})
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    assert runtime.state(container_id)["status"] == "created"
    runtime.run("start", container_id, check=True)
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86_64")
def test_calls_newer_than_the_profile_fail_with_enosys(runtime: Runtime, runc: Runtime, probe: Path) -> None:
    """runc's profile with clone and the x86 architectures: the highest call it names is
    faccessat2 (439). 450 (set_mempolicy_home_node) is newer: ENOSYS (38), as from a kernel
    without it. acct (163) is older and not listed: the default, ENXIO (6). faccessat2 itself
    runs (EFAULT, 14, for its null path)."""
    profile = runc_test2_profile(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    profile["syscalls"][0]["names"].append("clone")
    script = "/probe syscall 450; /probe syscall 163; /probe syscall 439"
    ours, theirs = run_both(runtime, runc, ["sh", "-c", script], linux={"seccomp": profile},
                            mounts=with_probe(runtime, probe))
    assert ours == theirs
    assert ours == (0, "38\n6\n14\n", "")


def test_listener_path_without_notify_rules_is_ignored(runtime: Runtime, runc: Runtime) -> None:
    folder = Path(tempfile.mkdtemp(prefix="agent-", dir="/tmp"))
    os.chmod(folder, 0o755)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(folder / "sock"))
    os.chmod(folder / "sock", 0o777)
    server.listen(4)
    server.setblocking(False)
    try:
        seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(folder / "sock"),
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        ours, theirs = run_both(runtime, runc, ["sh", "-c", "mkdir /dev/shm/x 2>&1; echo done"],
                                linux={"seccomp": seccomp})
        assert ours == theirs
        assert ours[0] == 0 and "Operation not permitted" in ours[1] and ours[1].endswith("done\n")
        with pytest.raises(BlockingIOError):
            server.accept()                 # nobody connected
    finally:
        server.close()
        shutil.rmtree(folder)


# 5. Hooks without env.

def test_hooks_without_env_get_runcs_environment(runtime: Runtime, runc: Runtime) -> None:
    """prestart (run by the runtime): the runtime's environment. createContainer: the process's
    environment. startContainer: the process's, with HOME set."""
    seen = []
    for rt in (runtime, runc):
        out = Path(tempfile.mkdtemp(prefix="hooks-", dir=rt.work_dir))
        chown_tree(out, rt.user)
        dump = "env | grep -v -e ^PWD= -e ^SHLVL= -e ^_= | sort > "
        hooks = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", dump + f"{out}/prestart"]}],
                 "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", dump + f"{out}/createContainer"]}],
                 "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", dump + "/dev/shm/start"]}]}
        bundle = bundle_for(rt, ["cat", "/dev/shm/start"], hooks=hooks,
                            process={"env": ["PATH=/bin", "FROM=process"]})
        result = rt.run("run", "--bundle", bundle, rt.new_id(), env={"FROM": "runtime"})
        assert result.returncode == 0, result.stderr
        seen.append({"prestart": (out / "prestart").read_text().splitlines(),
                     "createContainer": (out / "createContainer").read_text().splitlines(),
                     "startContainer": result.stdout.splitlines()})
    ours, theirs = seen
    assert ours == theirs
    assert "FROM=runtime" in ours["prestart"]
    assert ours["createContainer"] == ["FROM=process", "PATH=/bin"]
    assert ours["startContainer"] == ["FROM=process", "HOME=/root", "PATH=/bin"]


# 6. What current runc (1.2 and later) applies and 1.1.5 does not: no runc here to compare with.

def status_field(text: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name + ":"))


def test_memory_policy_is_what_the_process_has(runtime: Runtime, probe: Path) -> None:
    """On node 0 (every machine has one): MPOL_BIND with MPOL_F_STATIC_NODES is mode 2 with
    flag 1<<15, mask 0x1; MPOL_PREFERRED is 1; without memoryPolicy, the default (0)."""
    mounts = with_probe(runtime, probe)
    bound = runtime.run_script("/probe mempolicy", mounts=mounts,
                               linux={"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0",
                                                       "flags": ["MPOL_F_STATIC_NODES"]}})
    assert bound == f"{2 | 1 << 15} 0x1\n"
    preferred = runtime.run_script("/probe mempolicy", mounts=mounts,
                                   linux={"memoryPolicy": {"mode": "MPOL_PREFERRED", "nodes": "0"}})
    assert preferred == "1 0x1\n"
    assert runtime.run_script("/probe mempolicy", mounts=mounts) == "0 0x0\n"


def test_memory_policy_reaches_exec_too(runtime: Runtime, probe: Path) -> None:
    bundle = runtime.bundle(["sleep", "600"], mounts=with_probe(runtime, probe),
                            linux={"memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0"}})
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    assert runtime.run("exec", container_id, "/probe", "mempolicy", check=True).stdout == "3 0x1\n"
    runtime.run("delete", "-f", container_id, check=True)


@pytest.mark.parametrize("policy, needle", [
    ({"mode": "MPOL_BIND"}, "MPOL_BIND needs nodes"),
    ({"mode": "MPOL_LOCAL", "nodes": "0"}, "MPOL_LOCAL takes no nodes"),
    ({"mode": "MPOL_BIND", "nodes": "0-x"}, "is not a list like 0-3,7"),
    ({"mode": "MPOL_BIND", "nodes": "63"}, "set_mempolicy"),      # no such node here
])
def test_bad_memory_policies_fail_create(runtime: Runtime, policy: dict, needle: str) -> None:
    bundle = runtime.bundle(["true"], linux={"memoryPolicy": policy})
    container_id = runtime.new_id()
    result = runtime.run("create", "--bundle", bundle, container_id)
    assert result.returncode == 1 and needle in result.stderr and result.stderr.count("\n") == 1, result.stderr
    runtime.assert_no_leaks(container_id, bundle=bundle)


needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0),
                                    reason="needs CPUs 0 and 1")


def pinned(rt: Runtime, cpu: int, *args: str) -> subprocess.CompletedProcess:
    """The runtime run under `taskset -c cpu`: a caller pinned to one CPU. Output through files
    (a detached container holds what it inherits)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(["taskset", "-c", str(cpu), *rt.command(*args)], stdout=out, stderr=err,
                              env=rt._env(None), cwd=rt.work_dir, timeout=60, stdin=subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(), err.read().decode())


@needs_two_cpus
def test_the_callers_cpu_pinning_does_not_leak_in(runtime: Runtime) -> None:
    everything = status_field(Path("/proc/self/status").read_text(), "Cpus_allowed_list")
    bundle = runtime.bundle(["sh", "-c", "grep Cpus_allowed_list /proc/self/status; sleep 600"],
                            process={"execCPUAffinity": {"initial": "1", "final": "1"}})  # exec's only
    container_id = runtime.new_id()
    result = pinned(runtime, 0, "run", "-d", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    pid = runtime.state(container_id)["pid"]
    assert status_field(Path(f"/proc/{pid}/status").read_text(), "Cpus_allowed_list") == everything
    exec_plain = pinned(runtime, 0, "exec", "-p", _process_file(runtime, {}), container_id)
    assert status_field(exec_plain.stdout, "Cpus_allowed_list") == everything, exec_plain.stderr
    runtime.run("delete", "-f", container_id, check=True)


def _process_file(runtime: Runtime, affinity: dict) -> Path:
    path = Path(tempfile.mkstemp(prefix="process-", suffix=".json", dir=runtime.work_dir)[1])
    process = {"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
               "user": {"uid": 0, "gid": 0}}
    if affinity:
        process["execCPUAffinity"] = affinity
    path.write_text(json.dumps(process))
    chown_tree(path, runtime.user)
    return path


@needs_two_cpus
def test_exec_cpu_affinity_initial_then_final(runtime: Runtime) -> None:
    """What the process runs on: execCPUAffinity from config.json, or from exec -p, with a
    caller pinned to CPU 0. initial alone stays the process's (the kernel keeps it: no cgroup
    moves it here); with final, final is."""
    bundle = runtime.bundle(["sleep", "600"], process={"execCPUAffinity": {"initial": "0", "final": "1"}})
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    from_config = runtime.run("exec", container_id, "grep", "Cpus_allowed_list", "/proc/self/status", check=True)
    assert status_field(from_config.stdout, "Cpus_allowed_list") == "1"
    for affinity, expected in (({"initial": "1"}, "1"), ({"initial": "0", "final": "0-1"}, "0-1"),
                               ({"initial": "0,1", "final": "0"}, "0")):
        result = pinned(runtime, 0, "exec", "-p", _process_file(runtime, affinity), container_id)
        assert result.returncode == 0, result.stderr
        assert status_field(result.stdout, "Cpus_allowed_list") == expected, affinity
    bad = runtime.run("exec", "-p", _process_file(runtime, {"initial": "1-0"}), container_id)
    assert bad.returncode == 255 and "execCPUAffinity.initial" in bad.stderr  # runc: 255 for any exec failure
    runtime.run("delete", "-f", container_id, check=True)
