"""The cgroupfs driver for real on a hybrid host: its cgroup2 tree at /sys/fs/cgroup/unified
has no controller worth having (they are bound to cgroup v1, never written), but it tracks,
freezes and kills processes as any cgroup v2 does. Each test delegates a fresh cgroup there to
the runtime's user, as systemd's Delegate=yes would (the directory and its cgroup.procs,
cgroup.subtree_control and cgroup.threads chowned), runs the runtime from a `caller.scope`
inside it, and points the runtime at the tree with ROOTLESS_CGROUP_MOUNT. Limits need real
controllers: those are checked in the VM tier (tests/vm)."""

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from helpers.runtime import Runtime
from test_bad_input import assert_one_line_error

UNIFIED = Path("/sys/fs/cgroup/unified")
pytestmark = pytest.mark.skipif(not (UNIFIED / "cgroup.procs").exists() or os.geteuid() != 0,
                                reason="needs root and a hybrid host's cgroup2 tree at /sys/fs/cgroup/unified")


class Delegated:
    def __init__(self, runtime: Runtime):
        self.name = f"rootless-tests-{uuid.uuid4().hex[:10]}"
        self.path = UNIFIED / self.name
        self.caller = self.path / "caller.scope"
        self.path.mkdir()
        self.caller.mkdir()
        user = runtime.user
        for path in (self.path, self.path / "cgroup.procs", self.path / "cgroup.subtree_control",
                     self.path / "cgroup.threads", self.caller, self.caller / "cgroup.procs"):
            os.chown(path, user.uid, user.gid)
        original = runtime.command
        # Each runtime call starts in caller.scope (moved there by root before it becomes the user).
        runtime.command = lambda *args: ["sh", "-c", f'echo $$ > {self.caller}/cgroup.procs && exec "$@"', "sh",
                                         "env", f"ROOTLESS_CGROUP_MOUNT={UNIFIED}", *original(*args)]

    def cgroup_of(self, pid: int) -> str:
        return Path(f"/proc/{pid}/cgroup").read_text().strip().splitlines()[-1]

    def remove(self) -> None:
        for directory, _dirs, _files in sorted(os.walk(self.path, topdown=False), key=lambda e: -len(e[0])):
            for pid in Path(directory, "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            for _ in range(200):
                try:
                    os.rmdir(directory)
                    break
                except OSError:
                    time.sleep(0.01)


@pytest.fixture
def delegated(runtime: Runtime):
    tree = Delegated(runtime)
    yield tree
    runtime.cleanup()  # its containers go before their cgroups
    tree.remove()


def test_the_init_is_in_its_cgroup_when_create_returns(runtime: Runtime, delegated: Delegated) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, "--pid-file", "init.pid", container_id, check=True)
    pid = int((runtime.work_dir / "init.pid").read_text())
    # containerd's shim reads this right after create, for `ctr task metrics`.
    assert delegated.cgroup_of(pid) == f"0::/{delegated.name}/{container_id}"
    saved = json.loads((runtime.state_dir(container_id) / "state.json").read_text())
    cgroup = delegated.path / container_id
    assert saved["cgroup"] == {"driver": "cgroupfs", "path": str(cgroup), "created": [str(cgroup)]}
    # Only the init: the runtime that made it stays out.
    assert (cgroup / "cgroup.procs").read_text().split() == [str(pid)]
    runtime.run("start", container_id, check=True)
    runtime.run("exec", "-d", "--pid-file", "exec.pid", container_id, "sleep", "600", check=True)
    exec_pid = int((runtime.work_dir / "exec.pid").read_text())
    assert delegated.cgroup_of(exec_pid) == f"0::/{delegated.name}/{container_id}"
    assert sorted(json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout)) == \
        sorted([pid, exec_pid])
    runtime.run("delete", "-f", container_id, check=True)
    assert not cgroup.exists()
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid, exec_pid))


def test_a_cgroup_namespace_is_rooted_at_the_container_s_cgroup(runtime: Runtime, delegated: Delegated) -> None:
    namespaces = [{"type": t} for t in ["pid", "ipc", "uts", "mount", "network", "cgroup"]
                  + (["user"] if runtime.rootless else [])]
    out = runtime.run_script("cat /proc/self/cgroup", linux={"namespaces": namespaces})
    assert out.strip().splitlines()[-1] == "0::/"


def counter(runtime: Runtime, pid: int) -> int:
    text = Path(f"/proc/{pid}/root/dev/shm/count").read_text().strip()
    return int(text or 0)


def test_pause_freezes_and_resume_thaws(runtime: Runtime, delegated: Delegated) -> None:
    bundle = runtime.bundle(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.02; done"])
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    deadline = time.monotonic() + 10
    while not (Path(f"/proc/{pid}/root/dev/shm/count").exists() and counter(runtime, pid) > 2):
        assert time.monotonic() < deadline, "the counter does not count"
        time.sleep(0.05)
    runtime.run("pause", container_id, check=True)
    assert runtime.state(container_id)["status"] == "paused"
    assert "frozen 1" in (delegated.path / container_id / "cgroup.events").read_text()
    frozen_at = counter(runtime, pid)
    time.sleep(0.5)
    assert counter(runtime, pid) == frozen_at  # stopped
    assert [c["status"] for c in json.loads(runtime.run("list", "--format", "json", check=True).stdout)] == ["paused"]
    refused = runtime.run("exec", container_id, "true")  # 255: runc's status for an exec that never ran
    assert refused.returncode == 255 and refused.stderr.count("\n") == 1 and "--ignore-paused" in refused.stderr
    assert_one_line_error(runtime.run("pause", container_id), "it is paused")
    assert_one_line_error(runtime.run("delete", container_id), "paused")
    runtime.run("resume", container_id, check=True)
    assert runtime.state(container_id)["status"] == "running"
    deadline = time.monotonic() + 10
    while counter(runtime, pid) <= frozen_at:  # goes on
        assert time.monotonic() < deadline, "the counter did not go on after resume"
        time.sleep(0.05)
    runtime.run("pause", container_id, check=True)
    runtime.run("delete", "-f", container_id, check=True)  # a paused container too
    assert not (delegated.path / container_id).exists()
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


def test_kill_all_reaches_every_process_of_the_cgroup(runtime: Runtime, delegated: Delegated) -> None:
    """Without a PID namespace the processes are found through the cgroup alone, even those
    whose parent died (reparented out of the init's tree)."""
    namespaces = [{"type": t} for t in ["ipc", "uts", "mount", "network"] + (["user"] if runtime.rootless else [])]
    bundle = runtime.bundle(["sh", "-c", "(sh -c 'sleep 600 & sleep 600 & wait' &) ; sleep 600"],
                            linux={"namespaces": namespaces})
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    procs = delegated.path / container_id / "cgroup.procs"
    deadline = time.monotonic() + 10
    while len(procs.read_text().split()) < 4:  # the init (sleep), the orphaned sh and its two sleeps
        assert time.monotonic() < deadline, procs.read_text()
        time.sleep(0.05)
    listed = json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout)
    assert sorted(listed) == sorted(map(int, procs.read_text().split()))
    runtime.run("kill", "-a", container_id, "KILL", check=True)
    deadline = time.monotonic() + 10
    while procs.read_text().split():
        assert time.monotonic() < deadline, procs.read_text()
        time.sleep(0.05)
    runtime.run("delete", container_id, check=True)
    assert not (delegated.path / container_id).exists()


def test_delete_force_leaves_nothing_that_forks(runtime: Runtime, delegated: Delegated) -> None:
    namespaces = [{"type": t} for t in ["ipc", "uts", "mount", "network"] + (["user"] if runtime.rootless else [])]
    bundle = runtime.bundle(["sh", "-c", "while :; do sleep 600 & done"], linux={"namespaces": namespaces})
    container_id = runtime.new_id()
    runtime.run("run", "-d", "--bundle", bundle, container_id, check=True)
    time.sleep(0.3)
    runtime.run("delete", "-f", container_id, check=True)
    assert not (delegated.path / container_id).exists()
    assert runtime.run("list", "-q", check=True).stdout == ""


def test_update_events_and_limits_without_controllers(runtime: Runtime, delegated: Delegated) -> None:
    """No controller is delegated in this tree: the limits are named, once, by create and by
    update; events reads what the tree has (cpu.stat is there without the cpu controller)."""
    bundle = runtime.bundle(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 600"],
                            linux={"resources": {"pids": {"limit": 50}}})
    container_id = runtime.new_id()
    log = runtime.work_dir / "log"
    created = runtime.run("--log", log, "run", "-d", "--bundle", bundle, container_id)
    assert (created.returncode, created.stderr) == (0, "")
    (line,) = log.read_text().splitlines()
    assert "limits not applied: pids.limit (their controllers are not enabled in" in line
    updated = runtime.run("update", "--pids-limit", "20", "--memory", "64m", container_id)
    assert updated.returncode == 0, updated.stderr
    (warning,) = updated.stderr.splitlines()
    assert "limits not applied: memory.limit, pids.limit" in warning
    saved = json.loads((runtime.state_dir(container_id) / "state.json").read_text())
    assert saved["resources"] == {"pids": {"limit": 20}, "memory": {"limit": 64 << 20}}
    config = json.loads((runtime.state_dir(container_id) / "config.json").read_text())
    assert config["linux"]["resources"] == saved["resources"]  # exec and later verbs see it
    (event,) = [json.loads(line) for line in runtime.run("events", "--stats", container_id, check=True)
                .stdout.splitlines()]
    assert event["type"] == "stats" and event["id"] == container_id
    assert event["data"]["cpu"]["usage"]["total"] > 0 and event["data"]["network_interfaces"] is None
    stream = runtime.popen("events", "--interval", "100ms", container_id)
    lines = [stream.stdout.readline() for _ in range(2)]
    assert all(json.loads(line)["type"] == "stats" for line in lines), lines
    runtime.run("kill", container_id, "KILL", check=True)
    assert stream.wait(timeout=10) == 0  # the stream ends with the container
    runtime.run("delete", container_id, check=True)


def test_required_limits_without_their_controller_are_refused(runtime: Runtime, delegated: Delegated) -> None:
    bundle = runtime.bundle(["true"], linux={"resources": {"pids": {"limit": 50}}},
                            annotations={"rootless.cgroups": "required"})
    container_id = runtime.new_id("req")
    result = runtime.run("create", "--bundle", bundle, container_id)
    assert_one_line_error(result, f"cannot create container {container_id}", "pids.limit", "required")
    assert not (delegated.path / container_id).exists()
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_cgroups_path_taken_is_refused_and_lifecycles_leave_no_cgroup(runtime: Runtime,
                                                                       delegated: Delegated) -> None:
    taken = delegated.path / "taken"
    taken.mkdir()
    os.chown(taken, runtime.user.uid, runtime.user.gid)  # another container's, say
    os.chown(taken / "cgroup.procs", runtime.user.uid, runtime.user.gid)
    bundle = runtime.bundle(["true"], linux={"cgroupsPath": f"/{delegated.name}/taken"})
    container_id = runtime.new_id()
    assert_one_line_error(runtime.run("create", "--bundle", bundle, container_id), "already exists")
    runtime.assert_no_leaks(container_id, bundle=bundle)
    taken.rmdir()
    bundle = runtime.bundle(["true"])
    for _ in range(10):
        runtime.run("run", "--bundle", bundle, runtime.new_id(), check=True)
    assert sorted(p.name for p in delegated.path.iterdir() if p.is_dir()) == ["caller.scope"]


def test_the_shim_and_the_network_helper_stay_out(runtime: Runtime, delegated: Delegated) -> None:
    """Their memory must not count against the container's limits (conmon lives outside too)."""
    bundle = runtime.bundle(["sleep", "600"], annotations={"rootless.network": "slirp4netns"})
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--bundle", bundle, container_id, check=True)
    saved = json.loads((runtime.state_dir(container_id) / "state.json").read_text())
    inside = set(map(int, (delegated.path / container_id / "cgroup.procs").read_text().split()))
    assert inside == {saved["pid"]}
    helpers = [saved["shim"]["pid"], saved["network"]["helper_pid"], saved["network"]["watcher_pid"]]
    for pid in helpers:
        assert delegated.cgroup_of(pid) == f"0::/{delegated.name}/caller.scope", pid
    runtime.run("delete", "-f", container_id, check=True)
    assert not (delegated.path / container_id).exists()


def test_systemd_driver_lifecycle_with_a_stand_in_manager(runtime: Runtime, delegated: Delegated) -> None:
    """--systemd-cgroup end to end through D-Bus, with helpers/fake_systemd.py doing systemd's
    part on the unified tree (a scope is BASE/SLICE/UNIT). `--systemd-cgroup` is given to
    `create` only, as podman does: every later verb reads the driver from the state."""
    from test_systemd_bus import Bus
    base = delegated.path / "user@.service"
    base.mkdir()
    os.chown(base, runtime.user.uid, runtime.user.gid)
    os.chown(base / "cgroup.procs", runtime.user.uid, runtime.user.gid)
    folder = Path(tempfile.mkdtemp(prefix="bus-", dir="/var/tmp"))  # a socket path is short
    os.chmod(folder, 0o755)
    os.chown(folder, runtime.user.uid, runtime.user.gid)
    bus = Bus(runtime.user, folder, base)
    try:
        env = {"DBUS_SESSION_BUS_ADDRESS" if runtime.rootless else "DBUS_SYSTEM_BUS_ADDRESS": bus.address}
        slice_ = "user.slice" if runtime.rootless else "system.slice"
        container_id = runtime.new_id()
        bundle = runtime.bundle(["sleep", "600"], linux={"cgroupsPath": f"{slice_}:libpod:{container_id}",
                                                         "resources": {"pids": {"limit": 30}}},
                                annotations={"org.systemd.property.CollectMode": "'inactive-or-failed'"})
        log = runtime.work_dir / "log"
        runtime.run("--systemd-cgroup", "--log", log, "create", "--bundle", bundle, container_id, env=env, check=True)
        unit = f"libpod-{container_id}.scope"
        scope = base / slice_ / unit
        pid = runtime.state(container_id)["pid"]
        assert delegated.cgroup_of(pid) == f"0::/{delegated.name}/user@.service/{slice_}/{unit}"
        saved = json.loads((runtime.state_dir(container_id) / "state.json").read_text())["cgroup"]
        assert (saved["driver"], saved["unit"], saved["slice"], saved["path"]) == ("systemd", unit, slice_, str(scope))
        # The stand-in has no controllers: the limit is named (systemd got it as TasksMax).
        assert "limits not applied: pids.limit" in log.read_text()
        start = [c for c in bus.calls() if c["member"] == "StartTransientUnit"][0]["body"]
        props = {name: value for name, (_sig, value) in start[2]}
        assert start[0] == unit and props["Delegate"] is True and props["TasksMax"] == 30
        assert props["CollectMode"] == "inactive-or-failed" and props["Slice"] == slice_
        assert len(props["PIDs"]) == 1 and props["PIDs"] != [pid]  # the namespace stage, the init's parent
        runtime.run("start", container_id, env=env, check=True)
        runtime.run("exec", "-d", "--pid-file", "exec.pid", container_id, "sleep", "600", env=env, check=True)
        exec_pid = int((runtime.work_dir / "exec.pid").read_text())
        assert delegated.cgroup_of(exec_pid) == delegated.cgroup_of(pid)
        runtime.run("pause", container_id, env=env, check=True)
        assert runtime.state(container_id)["status"] == "paused"
        runtime.run("resume", container_id, env=env, check=True)
        updated = runtime.run("update", "--pids-limit", "40", container_id, env=env)
        assert updated.returncode == 0, updated.stderr
        set_props = [c for c in bus.calls() if c["member"] == "SetUnitProperties"][0]["body"]
        assert set_props == [unit, True, [["TasksMax", ["t", 40]]]]
        runtime.run("delete", "-f", container_id, env=env, check=True)
        members = [c["member"] for c in bus.calls()]
        assert members[-2:] == ["StopUnit", "ResetFailedUnit"], members
        assert not scope.exists()
        runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid, exec_pid))
    finally:
        bus.stop()
        shutil.rmtree(folder, ignore_errors=True)
