"""The lifecycle contract runc's clients script against: create/start/state/kill/delete/list,
exit codes, the pid file, and what `state` prints."""

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from helpers.runtime import Runtime



def test_create_start_state_kill_delete(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, "--pid-file", "init.pid", container_id, check=True)
    pid_file = (runtime.work_dir / "init.pid").read_text()
    assert pid_file.isdigit(), repr(pid_file)  # no newline, as runc writes it
    created = runtime.state(container_id)
    assert created["status"] == "created"
    assert created["pid"] == int(pid_file)
    assert created["id"] == container_id and created["bundle"] == str(bundle)
    assert created["rootfs"] == str(runtime.rootfs) and created["owner"] == ""  # runc fills it for `list` only
    assert created["ociVersion"] and created["created"].endswith("Z")
    # The init waits inside the namespaces: its own PID namespace already, and not the command yet.
    assert os.readlink(f"/proc/{created['pid']}/ns/pid") != os.readlink("/proc/self/ns/pid")
    # It waits as rootless/create/initwait.c, run from a sealed memfd: a few pages, not an interpreter.
    assert Path(f"/proc/{created['pid']}/comm").read_text() == "rootless:init\n"
    assert os.readlink(f"/proc/{created['pid']}/exe").startswith("/memfd:rootless-init")
    runtime.run("start", container_id, check=True)
    running = runtime.wait_for_status(container_id, "running")
    assert running["status"] == "running" and running["pid"] == created["pid"]
    assert Path(f"/proc/{created['pid']}/cmdline").read_bytes() == b"sleep\x00600\x00"
    again = runtime.run("start", container_id)
    assert again.returncode == 1 and "cannot start an already running container" in again.stderr
    busy = runtime.run("delete", container_id)
    assert busy.returncode == 1 and "running" in busy.stderr
    listed = json.loads(runtime.run("list", "--format", "json", check=True).stdout)
    assert [(c["id"], c["status"], c["owner"]) for c in listed] == [(container_id, "running", runtime.user.name)]
    assert container_id in runtime.run("list", check=True).stdout
    runtime.run("kill", container_id, "0", check=True)  # signal 0: alive
    assert runtime.state(container_id)["status"] == "running"
    runtime.run("kill", container_id, "SIGKILL", check=True)
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    assert runtime.state(container_id)["pid"] == 0
    for signal in ("TERM", "0"):
        not_running = runtime.run("kill", container_id, signal)
        assert not_running.returncode == 1 and "not running" in not_running.stderr
    runtime.run("delete", container_id, check=True)
    gone = runtime.run("state", container_id)
    assert gone.returncode == 1 and "does not exist" in gone.stderr
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(created["pid"],))


def test_state_follows_the_spec_schema(runtime: Runtime) -> None:
    from rootless.oci.schema import validate_state
    bundle = runtime.bundle(["sleep", "600"], annotations={"org.example.key": "value"})
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    state = runtime.state(container_id)
    assert validate_state(state) == []
    assert state["annotations"] == {"org.example.key": "value"}
    runtime.run("delete", "--force", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


def test_delete_of_a_created_container_kills_its_init(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


def test_run_exit_status(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
    container_id = runtime.new_id()
    result = runtime.run("run", "--bundle", bundle, container_id)
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_run_killed_by_a_signal_exits_128_plus_signal(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    proc = runtime.popen("run", "--bundle", bundle, container_id)
    state = runtime.wait_for_status(container_id, "running")
    runtime.run("kill", container_id, "9", check=True)
    assert proc.wait(timeout=20) == 128 + signal.SIGKILL
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


def test_run_forwards_sigterm(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "trap 'echo got-term; exit 3' TERM; while :; do sleep 0.05; done"])
    container_id = runtime.new_id()
    proc = runtime.popen("run", "--bundle", bundle, container_id)
    runtime.wait_for_status(container_id, "running")
    time.sleep(0.3)  # let the shell install its trap
    # The runtime runs as the test user under setpriv: signal the runtime process itself.
    runtime_pids = subprocess.run(["pgrep", "-f", f"run --bundle {bundle} {container_id}"],
                                  capture_output=True, text=True).stdout.split()
    for pid in runtime_pids:
        os.kill(int(pid), signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 3 and "got-term" in out


def test_run_detach_and_keep(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "exit 0"])
    container_id = runtime.new_id()
    runtime.run("run", "--keep", "--bundle", bundle, container_id, check=True)
    assert runtime.state(container_id)["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    detached = runtime.new_id()
    bundle = runtime.bundle(["sleep", "600"])
    runtime.run("run", "-d", "--bundle", bundle, detached, check=True)
    assert runtime.state(detached)["status"] == "running"
    runtime.run("delete", "-f", detached, check=True)
    runtime.assert_no_leaks(detached, bundle=bundle)


def test_kill_all_reaches_every_process(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "sleep 600 & sleep 600 & wait"])
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    init = runtime.state(container_id)["pid"]
    deadline = time.monotonic() + 10
    inside = []
    while len(inside) < 3 and time.monotonic() < deadline:
        ns = os.readlink(f"/proc/{init}/ns/pid")
        inside = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ns(p) == ns]
        time.sleep(0.05)
    assert len(inside) == 3
    runtime.run("kill", "--all", container_id, "KILL", check=True)
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=tuple(inside))


def _ns(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def test_list_quiet_and_delete_force_of_unknown(runtime: Runtime) -> None:
    assert runtime.run("list", "-q", check=True).stdout == ""
    assert runtime.run("delete", "-f", "never-created").returncode == 0
    unknown = runtime.run("kill", "never-created")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr


def test_concurrent_creates_of_one_id(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    # Output through files: the created init keeps its stdio, so a pipe would never close.
    logs = [tempfile.TemporaryFile() for _ in range(4)]
    procs = [runtime.popen("create", "--bundle", bundle, container_id, stdout=subprocess.DEVNULL, stderr=log)
             for log in logs]
    codes = [p.wait(timeout=30) for p in procs]
    errors = []
    for log in logs:
        log.seek(0)
        errors.append(log.read().decode())
    assert sorted(codes) == [0, 1, 1, 1], errors
    assert all("already exists" in err for code, err in zip(codes, errors) if code)
    runtime.run("delete", "-f", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_spec_and_features(runtime: Runtime) -> None:
    from rootless.oci.schema import validate_config, validate_features
    folder = runtime.work_dir
    runtime.run("spec", "--rootless", "-b", folder, check=True)
    config = json.loads((folder / "config.json").read_text())
    assert validate_config(config) == []
    assert {"type": "user"} in config["linux"]["namespaces"]
    again = runtime.run("spec", "--rootless", "-b", folder)
    assert again.returncode == 1 and "exists" in again.stderr
    features = json.loads(runtime.run("features", check=True).stdout)
    assert validate_features(features) == []
    assert "user" in features["linux"]["namespaces"] and "rbind" in features["mountOptions"]


def test_kill_term_ends_a_created_container(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    runtime.run("kill", container_id, check=True)  # TERM by default
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


def test_join_namespaces_by_path(runtime: Runtime) -> None:
    """A second container joins the first one's network namespace by path (as podman passes a
    netns path; rootless joins the first one's user namespace too, which owns that netns)."""
    first_bundle = runtime.bundle(["sleep", "600"])
    first = runtime.new_id()
    runtime.run("run", "-d", "--bundle", first_bundle, first, check=True)
    first_pid = runtime.state(first)["pid"]
    joined = [{"type": "network", "path": f"/proc/{first_pid}/ns/net"}]
    if runtime.rootless:
        joined.append({"type": "user", "path": f"/proc/{first_pid}/ns/user"})
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + joined
    bundle = runtime.bundle(["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/user; id -u"],
                            linux={"namespaces": namespaces})
    result = runtime.run("run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    net, user, uid = result.stdout.split()
    assert net == os.readlink(f"/proc/{first_pid}/ns/net")
    assert user == os.readlink(f"/proc/{first_pid}/ns/user")
    assert uid == "0"
    runtime.run("delete", "-f", first, check=True)
    runtime.assert_no_leaks(first, bundle=first_bundle, pids=(first_pid,))


def test_ps_lists_the_container_processes(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "sleep 600 & sleep 601 & wait"])
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    init = runtime.state(container_id)["pid"]
    deadline = time.monotonic() + 10
    pids: list = []
    while len(pids) < 3 and time.monotonic() < deadline:
        pids = json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout)
        time.sleep(0.05)
    assert len(pids) == 3 and init in pids
    assert all(os.readlink(f"/proc/{p}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid") for p in pids)
    table = runtime.run("ps", container_id, "--", "-o", "pid,args", check=True).stdout.splitlines()
    assert table[0].split() == ["PID", "COMMAND"]
    assert sorted(int(row.split()[0]) for row in table[1:]) == sorted(pids)
    assert any("sleep 601" in row for row in table[1:])
    runtime.run("delete", "-f", container_id, check=True)
    stopped = runtime.run("ps", container_id)
    assert stopped.returncode == 1 and "does not exist" in stopped.stderr
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=tuple(pids))
