"""`exec` into containers: the process joins every namespace of the container's init and gets
the container's settings, with runc's flags over them."""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from helpers.runtime import Runtime
from test_io import ConsoleReceiver
from test_seccomp_filters import SeccompAgent, mounts_with_tmp, profile


@pytest.fixture
def running(runtime: Runtime):
    """A running container (its process sleeps) with a writable /tmp: (runtime, id, init pid)."""
    def start(*flags, **overrides):
        overrides.setdefault("mounts", mounts_with_tmp(runtime))
        bundle = runtime.bundle(["sleep", "600"], **overrides)
        container_id = runtime.new_id()
        runtime.run("run", "--detach", *flags, "--bundle", bundle, container_id, check=True)
        started.append((container_id, bundle))
        return container_id, runtime.state(container_id)["pid"]

    started: list = []
    yield start
    for container_id, bundle in started:
        runtime.run("delete", "--force", container_id)
        runtime.assert_no_leaks(container_id, bundle=bundle)


def status_field(text: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name + ":"))


def test_exit_codes_and_output(runtime: Runtime, running) -> None:
    container_id, _ = running()
    result = runtime.run("exec", container_id, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert runtime.run("exec", container_id, "true").returncode == 0
    missing = runtime.run("exec", container_id, "no-such-program")
    assert missing.returncode != 0
    assert missing.stderr.strip() == 'rootless: exec: "no-such-program": executable file not found in $PATH'
    killed = runtime.run("exec", container_id, "sh", "-c", "kill -9 $$")
    assert killed.returncode == 128 + 9


def test_joins_every_namespace_of_the_init(runtime: Runtime, running) -> None:
    container_id, init_pid = running()
    runtime.run("exec", container_id, "sh", "-c", "echo from-exec > /tmp/marker", check=True)
    names = ("pid", "mnt", "net", "ipc", "uts", "user", "cgroup")
    script = "; ".join(f"readlink /proc/self/ns/{name}" for name in names) + \
        "; tr '\\0' ' ' < /proc/1/cmdline; echo; cat /tmp/marker"
    lines = runtime.run("exec", container_id, "sh", "-c", script, check=True).stdout.splitlines()
    for name, seen in zip(names, lines):
        assert seen == os.readlink(f"/proc/{init_pid}/ns/{name}"), name
    assert lines[len(names)] == "sleep 600 "   # PID 1 is the container's init
    assert lines[len(names) + 1] == "from-exec"  # the container's own /tmp


def test_enters_the_root_of_a_no_pivot_container(runtime: Runtime, running) -> None:
    """--no-pivot moves the rootfs over the namespace's root: exec enters the init's root."""
    container_id, init_pid = running("--no-pivot")
    out = runtime.run("exec", container_id, "stat", "-c", "%d %i", "/", check=True).stdout
    root = os.stat(f"/proc/{init_pid}/root/")
    assert out.split() == [str(root.st_dev), str(root.st_ino)]


def test_env_cwd_user_and_groups(runtime: Runtime, running) -> None:
    container_id, _ = running(process={"env": ["PATH=/bin:/sbin", "FROM_CONFIG=1", "OVERRIDDEN=old"]})
    out = runtime.run("exec", "--cwd", "/tmp", "-e", "ADDED=yes", "--env=OVERRIDDEN=new", "-u", "1000:1000",
                      "-g", "5", "-g", "7", container_id, "sh", "-c",
                      "pwd; id -u; id -g; id -G; echo $FROM_CONFIG $ADDED $OVERRIDDEN", check=True).stdout
    assert out.splitlines() == ["/tmp", "1000", "1000", "1000 5 7", "1 yes new"]
    only_uid = runtime.run("exec", "--user", "1000", container_id, "sh", "-c", "id -u; id -g", check=True)
    assert only_uid.stdout.split() == ["1000", "0"]  # the gid stays the container's


def test_capabilities_and_no_new_privs(runtime: Runtime, running) -> None:
    container_id, _ = running()
    plain = runtime.run("exec", container_id, "cat", "/proc/self/status", check=True).stdout
    added = runtime.run("exec", "--cap", "CAP_SYS_PTRACE", "--cap", "net_admin", "--no-new-privs", container_id,
                        "cat", "/proc/self/status", check=True).stdout
    ptrace, net_admin = 1 << 19, 1 << 12
    assert not int(status_field(plain, "CapEff"), 16) & (ptrace | net_admin)
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(added, field), 16) & (ptrace | net_admin) == ptrace | net_admin, field
    assert status_field(plain, "NoNewPrivs") == "1"  # make_config's process has it
    container_id, _ = running(process={"noNewPrivileges": False})
    assert status_field(runtime.run("exec", container_id, "cat", "/proc/self/status", check=True).stdout,
                        "NoNewPrivs") == "0"
    nnp = runtime.run("exec", "--no-new-privs", container_id, "cat", "/proc/self/status", check=True).stdout
    assert status_field(nnp, "NoNewPrivs") == "1"


def test_the_containers_seccomp_filter_applies(runtime: Runtime, running) -> None:
    seccomp = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    container_id, _ = running(linux={"seccomp": seccomp})
    out = runtime.run("exec", container_id, "sh", "-c",
                      "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1 || echo refused", check=True).stdout
    assert out.splitlines()[0].split() == ["Seccomp:", "2"]
    assert "refused" in out and "Operation not permitted" in out


def test_the_seccomp_agent_gets_the_exec_process(runtime: Runtime, running) -> None:
    folder = Path(tempfile.mkdtemp(prefix="agent-", dir="/tmp"))
    os.chmod(folder, 0o755)
    agent = SeccompAgent(folder / "sock", (runtime.user.uid, runtime.user.gid))
    seccomp = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"})
    seccomp.update(listenerPath=str(folder / "sock"), listenerMetadata="from-exec")
    container_id, init_pid = running(linux={"seccomp": seccomp})
    pid_file = runtime.work_dir / "agent.pid"
    out = runtime.run("exec", "--pid-file", pid_file, container_id, "sh", "-c", "mkdir /tmp/x 2>&1; echo done",
                      check=True).stdout
    assert "Permission denied" in out and out.endswith("done\n")  # the agent's answer
    assert len(agent.states) == 2
    state = agent.states[1]
    assert state["pid"] == int(pid_file.read_text()) and state["metadata"] == "from-exec"
    assert state["state"]["pid"] == init_pid and state["state"]["status"] == "running"
    assert state["state"]["id"] == container_id
    shutil.rmtree(folder)


def test_detach_and_pid_file(runtime: Runtime, running) -> None:
    container_id, init_pid = running()
    pid_file = runtime.work_dir / "exec.pid"
    result = runtime.run("exec", "-d", "--pid-file", pid_file, container_id, "sleep", "30")
    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init_pid}/ns/pid")
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x0030\x00"
    listed = json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout)
    assert sorted(listed) == sorted([init_pid, pid])


def test_process_file(runtime: Runtime, running) -> None:
    container_id, _ = running()
    process = {"args": ["sh", "-c", "echo $ONLY; pwd; id -u"], "env": ["ONLY=from-file", "PATH=/bin"],
               "cwd": "/proc", "user": {"uid": 1000, "gid": 1000}, "terminal": False}
    path = runtime.work_dir / "process.json"
    path.write_text(json.dumps(process))
    out = runtime.run("exec", "--process", path, container_id, check=True).stdout
    assert out.splitlines() == ["from-file", "/proc", "1000"]


def test_tty_through_the_console_socket(runtime: Runtime, running) -> None:
    container_id, _ = running()
    folder = Path(tempfile.mkdtemp(prefix="console-", dir="/tmp"))
    os.chown(folder, runtime.user.uid, runtime.user.gid)
    receiver = ConsoleReceiver(folder / "sock", (runtime.user.uid, runtime.user.gid))
    pid_file = runtime.work_dir / "tty.pid"
    result = runtime.run("exec", "-t", "-d", "--console-socket", folder / "sock", "--pid-file", pid_file,
                         container_id, "sh", "-c", "read line; echo got:$line; tty; [ -t 0 ] && echo stdin-is-tty")
    assert result.returncode == 0, result.stderr
    receiver.thread.join(timeout=20)
    text = receiver.output.decode().replace("\r", "")
    assert "got:typed-in" in text and "/dev/pts/" in text and "stdin-is-tty" in text
    shutil.rmtree(folder)


def test_foreground_tty_is_proxied(runtime: Runtime, running) -> None:
    container_id, _ = running()
    result = runtime.run("exec", "-t", container_id, "sh", "-c", "tty; exit 5")
    assert result.returncode == 5, result.stderr
    assert "/dev/pts/" in result.stdout


def test_preserved_fds(runtime: Runtime, running) -> None:
    container_id, _ = running()
    extra = runtime.work_dir / "extra"
    extra.write_text("preserved\n")
    os.chown(extra, runtime.user.uid, runtime.user.gid)
    script = f'exec 3<{extra} 4<{extra}; exec "$@"'
    argv = ["sh", "-c", script, "sh", *runtime.command("exec", "--preserve-fds", "2", container_id,
                                                         "sh", "-c", "cat <&4; ls /proc/self/fd")]
    import subprocess
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=runtime._env(None),
                            cwd=runtime.work_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "preserved"
    assert sorted(int(n) for n in lines[1:]) in ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4])  # 5: ls's own


def test_bad_exec_requests_leave_nothing(runtime: Runtime, running) -> None:
    unknown = runtime.run("exec", "no-such-container", "true")
    assert unknown.returncode == 255 and "container does not exist" in unknown.stderr  # runc's status and words
    bundle = runtime.bundle(["sleep", "600"])
    created = runtime.new_id()
    runtime.run("create", "--bundle", bundle, created, check=True)
    runtime.run("kill", created, "KILL", check=True)
    runtime.wait_for_status(created, "stopped")
    stopped = runtime.run("exec", created, "true")
    assert stopped.returncode == 255 and len(stopped.stderr.splitlines()) == 1
    assert "cannot exec in a stopped container" in stopped.stderr
    runtime.run("delete", created, check=True)
    container_id, init_pid = running()
    before = set(json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout))
    for args, expected in (((), "needs a command"), (("--bad-flag",), "unknown flag"),
                           (("-u", "root"), "invalid user"), (("--preserve-fds", "40"), "not open"),
                           (("--console-socket", "/nonexistent"), "needs a terminal"),
                           (("-t", "-d"), "needs --console-socket"),
                           (("--pid-file", "/proc/no/such/dir/pid"), "pid file"),
                           (("--apparmor", "some-profile"), "AppArmor is not enabled"),
                           (("--process", "/nonexistent.json"), "--process /nonexistent.json")):
        command = () if expected in ("needs a command", "--process /nonexistent.json") else ("sleep", "9")
        result = runtime.run("exec", *args, container_id, *command)
        assert result.returncode != 0 and expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    time.sleep(0.2)
    after = set(json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout))
    assert after == before
