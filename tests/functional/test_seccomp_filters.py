"""seccomp in real containers: what the process sees, and bad profiles refused up front.
(podman's default profile is exercised by tests/functional/test_podman.py.)"""

import errno
import fcntl
import json
import os
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.runtime import Runtime
from test_bad_input import create_fails

TMPFS_TMP = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}


def mounts_with_tmp(runtime: Runtime) -> list:
    return make_config([], rootless=runtime.rootless)["mounts"] + [TMPFS_TMP]


def profile(*rules: dict, default: str = "SCMP_ACT_ALLOW") -> dict:
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": list(rules)}


def test_errno_rule_blocks_one_call(runtime: Runtime) -> None:
    seccomp = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    out = runtime.run_script("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                             "mkdir /tmp/x 2>&1 || echo refused; touch /tmp/y && echo touched",
                             linux={"seccomp": seccomp}, mounts=mounts_with_tmp(runtime))
    lines = out.splitlines()
    assert lines[0].split() == ["NoNewPrivs:", "1"]
    assert lines[1].split() == ["Seccomp:", "2"]
    assert "Operation not permitted" in lines[2] and lines[3] == "refused"
    assert lines[4] == "touched"


def test_a_cached_filter_is_the_compiled_one(runtime: Runtime) -> None:
    """The first container compiles the profile and keeps it, the second loads the kept
    program, the third meets a damaged entry and compiles again: each sees the same errno."""
    cache = runtime.work_dir / "seccomp-cache"
    seccomp = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13})
    script = "grep '^Seccomp:' /proc/self/status; mkdir /tmp/x 2>&1 || echo refused; touch /tmp/y && echo touched"
    bundle = runtime.bundle(["sh", "-c", script], linux={"seccomp": seccomp}, mounts=mounts_with_tmp(runtime))
    seen = []
    for step in ("miss", "hit", "damaged"):
        if step == "damaged":
            [entry] = cache.glob("seccomp-*")
            entry.write_bytes(entry.read_bytes()[:-8])
        result = runtime.run("run", "--bundle", bundle, runtime.new_id(), env={"ROOTLESS_SECCOMP_CACHE": str(cache)})
        assert result.returncode == 0, result.stderr
        seen.append(result.stdout)
        [entry] = cache.glob("seccomp-*")
        assert entry.stat().st_uid == runtime.user.uid and entry.stat().st_mode & 0o777 == 0o600
    assert seen[0].splitlines()[0].split() == ["Seccomp:", "2"]
    assert "Permission denied" in seen[0] and seen[0].endswith("refused\ntouched\n")
    assert seen == [seen[0]] * 3


def test_filter_without_no_new_privs_and_arguments(runtime: Runtime) -> None:
    """Loaded while the init still holds CAP_SYS_ADMIN (noNewPrivileges false); an argument
    rule: personality(0) passes, any other persona gets EINVAL from the filter."""
    seccomp = profile({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                       "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]})
    out = runtime.run_script("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                             "linux32 true 2>&1 || echo blocked; linux64 true && echo native",
                             linux={"seccomp": seccomp}, process={"noNewPrivileges": False})
    lines = out.splitlines()
    assert lines[0].split() == ["NoNewPrivs:", "0"]
    assert lines[1].split() == ["Seccomp:", "2"]
    assert "blocked" in lines and "native" in lines


def test_default_errno_ret_is_what_the_process_sees(runtime: Runtime) -> None:
    allowed = ["read", "write", "exit", "exit_group", "rt_sigreturn", "execve", "brk", "mmap", "munmap",
               "mprotect", "arch_prctl", "set_tid_address", "getpid", "getppid", "rt_sigaction",
               "rt_sigprocmask", "newfstatat", "fstat", "stat", "lstat", "fcntl", "dup2", "close", "ioctl",
               "getuid", "geteuid", "getgid", "getegid", "uname", "prlimit64", "wait4", "vfork", "clone",
               "openat", "open", "getdents64", "lseek", "access", "faccessat", "faccessat2", "readlink",
               "getcwd", "chdir", "set_robust_list", "rseq", "sigaltstack", "futex", "pread64", "getrandom",
               "close_range", "sched_getaffinity", "statx", "pipe2", "pipe", "dup", "dup3", "exit"]
    seccomp = profile({"names": allowed, "action": "SCMP_ACT_ALLOW"}, default="SCMP_ACT_ERRNO")
    seccomp["defaultErrnoRet"] = 38  # ENOSYS
    out = runtime.run_script("mkdir /tmp/x 2>&1; echo done", linux={"seccomp": seccomp},
                             mounts=mounts_with_tmp(runtime))
    assert "Function not implemented" in out and out.endswith("done\n")


def test_bad_profiles_are_refused_before_anything_exists(runtime: Runtime) -> None:
    bad_action = profile({"names": ["mkdir"], "action": "SCMP_ACT_FOO"})
    create_fails(runtime, runtime.bundle(["true"], linux={"seccomp": bad_action}),
                 "linux.seccomp.syscalls[0].action", "SCMP_ACT_FOO")
    bad_operator = profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]})
    create_fails(runtime, runtime.bundle(["true"], linux={"seccomp": bad_operator}),
                 "linux.seccomp.syscalls[0].args[0].op", "SCMP_CMP_FOO")
    # An unknown name ("mkdri") is skipped, as runc and crun skip it: test_runc_tolerance.py


class SeccompAgent:
    """A minimal seccomp agent: for each connection (the init's, then each exec's), takes the
    process state and the notification fd (one message, SCM_RIGHTS), then answers every
    notification with EACCES. `state` is the first state, `states` all of them."""

    RECV = 0xC0502100   # SECCOMP_IOCTL_NOTIF_RECV: _IOWR('!', 0, struct seccomp_notif), 80 bytes
    SEND = 0xC0182101   # SECCOMP_IOCTL_NOTIF_SEND: _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes

    def __init__(self, path: Path, owner: tuple[int, int]):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        os.chmod(path, 0o777)
        os.chown(path, *owner)
        self.server.listen(4)
        self.states: list[dict] = []
        self.calls: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def state(self) -> dict:
        return self.states[0] if self.states else {}

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        threading.Thread(target=self._serve, daemon=True).start()  # the next connection
        message, fds, _, _ = socket.recv_fds(conn, 65536, 4)
        conn.close()
        self.states.append(json.loads(message))
        fd = fds[0]
        while True:
            request = bytearray(80)
            try:
                fcntl.ioctl(fd, self.RECV, request)
            except OSError:  # ENOENT/EBADF: every process of the filter is gone
                break
            notification_id, _pid, _flags, nr = struct.unpack_from("<QIIi", request)
            self.calls.append(nr)
            response = struct.pack("<QqiI", notification_id, 0, -errno.EACCES, 0)
            try:
                fcntl.ioctl(fd, self.SEND, bytearray(response))
            except OSError:
                pass
        os.close(fd)


@pytest.mark.parametrize("cache", ["miss", "hit"])
def test_notify_hands_the_fd_to_the_agent(runtime: Runtime, cache: str) -> None:
    """Compiled in this call, and loaded from the seccomp cache (the listener flag kept)."""
    env = {"ROOTLESS_SECCOMP_CACHE": str(runtime.work_dir / "seccomp-cache")}
    folder = Path(tempfile.mkdtemp(prefix="agent-", dir="/tmp"))
    os.chmod(folder, 0o755)
    agent = SeccompAgent(folder / "sock", (runtime.user.uid, runtime.user.gid))
    seccomp = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"})
    seccomp.update(listenerPath=str(folder / "sock"), listenerMetadata="hello-agent")
    bundle = runtime.bundle(["sh", "-c", "mkdir /tmp/x 2>&1; echo done"], linux={"seccomp": seccomp},
                            mounts=mounts_with_tmp(runtime), annotations={"org.example": "yes"})
    if cache == "hit":
        result = runtime.run("run", "--bundle", bundle, runtime.new_id(), env=env)
        assert result.returncode == 0 and result.stdout.endswith("done\n"), result.stderr
        agent.states.clear()
    container_id = runtime.new_id()
    result = runtime.run("run", "--bundle", bundle, container_id, env=env)
    assert result.returncode == 0, result.stderr
    assert "Permission denied" in result.stdout and result.stdout.endswith("done\n")  # the agent's answer
    assert len(list((runtime.work_dir / "seccomp-cache").glob("seccomp-*"))) == 1
    agent.thread.join(timeout=20)
    state = agent.state
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "hello-agent"
    assert state["pid"] > 1 and state["state"]["pid"] == state["pid"]  # the init's host PID
    assert state["state"]["id"] == container_id and state["state"]["status"] == "creating"
    assert state["state"]["bundle"] == str(bundle) and state["state"]["annotations"] == {"org.example": "yes"}
    assert set(agent.calls) <= {83, 258} and agent.calls  # mkdir, mkdirat on x86_64
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))
    shutil.rmtree(folder)


def test_notify_without_an_agent_listening_fails_create(runtime: Runtime) -> None:
    seccomp = profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"})
    seccomp["listenerPath"] = "/nonexistent/agent.sock"
    create_fails(runtime, runtime.bundle(["true"], linux={"seccomp": seccomp}),
                 "seccomp agent", "/nonexistent/agent.sock")


def test_profile_refusing_execveat_still_waits_and_starts(runtime: Runtime) -> None:
    """The created init waits as rootless/create/initwait, executed from a memfd with execveat; a
    profile that refuses execveat makes it wait as Python instead, and the container runs."""
    seccomp = profile({"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    bundle = runtime.bundle(["sleep", "600"], linux={"seccomp": seccomp})
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    assert not os.readlink(f"/proc/{pid}/exe").startswith("/memfd:")
    runtime.run("start", container_id, check=True)
    runtime.wait_for_status(container_id, "running")
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00600\x00"
    runtime.run("delete", "--force", container_id, check=True)
