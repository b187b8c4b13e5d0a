"""Issue 11's cgroup behaviour under the systemd driver, as the lingering user: a scope per
container below user@UID.service, limits that hold (memory, pids, cpu), update, pause and
resume, exec in the container's cgroup, delete and many lifecycles leaving no scope.

Written against runc's CLI and passing with runc in the VM: rootless must behave as runc does."""

import json
import os
import subprocess
import time

import pytest

from vmlib import (BOTH, COUNTER, DELEGATED, PREFIX, SLICE, VmRuntime, cgroup_of, counter, expected_scope, keyed, read,
                   scope_name, systemctl_user, user_manager_cgroup, wait_until, weight_from_shares)

MiB = 1024 * 1024
LIFECYCLES = int(os.environ.get("VMTIER_LIFECYCLES", "5"))


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_systemd_driver_makes_a_delegated_scope_below_the_user_manager(vm_runtime: VmRuntime) -> None:
    # The init is in its scope as soon as create returns (containerd reads it then).
    container_id, scope = vm_runtime.create(["sleep", "600"], resources={"pids": {"limit": 100}})
    assert user_manager_cgroup(vm_runtime.user.uid) in scope.parents
    shown = systemctl_user("show", "-p", "ActiveState", "-p", "Delegate", scope_name(container_id)).stdout
    assert sorted(shown.split()) == ["ActiveState=active", "Delegate=yes"], shown
    assert DELEGATED <= set(read(scope / "cgroup.controllers").split())
    assert read(scope / "pids.max") == "100"
    vm_runtime.run("start", container_id)
    assert vm_runtime.status(container_id) == "running"
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_memory_max_kills_what_exceeds_it_and_events_reports_the_oom(vm_runtime: VmRuntime) -> None:
    container_id = vm_runtime.start_detached("exec sleep 600", resources={"memory": {"limit": 32 * MiB}})
    scope = vm_runtime.cgroup(container_id)
    assert read(scope / "memory.max") == str(32 * MiB)
    with open(vm_runtime.rt.work_dir / "events", "w+") as events:
        watcher = vm_runtime.popen("events", "--interval", "1s", container_id, stdout=events)
        time.sleep(3)  # the watcher is reading memory.events before the allocation
        # busybox dd allocates its 64 MiB block and fills it from /dev/zero.
        hog = vm_runtime.run("exec", container_id, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                             check=False)
        assert hog.returncode == 128 + 9, (hog.returncode, hog.stderr)
        assert keyed(scope / "memory.events")["oom_kill"] >= 1

        def oom_reported() -> bool:
            events.seek(0)
            return any(json.loads(line).get("type") == "oom" for line in events.read().splitlines()
                       if line.startswith("{"))

        assert wait_until(oom_reported, timeout=60), events.read()
        watcher.kill()
        watcher.wait()
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_pids_max_stops_a_fork_bomb(vm_runtime: VmRuntime) -> None:
    out = vm_runtime.out_dir()
    # The subshell forks until it cannot (ash then gives up); the init goes on.
    bomb = ("(i=0; while [ $i -lt 40 ]; do sleep 600 & i=$((i+1)); done) 2>/out/errors; "
            "echo done > /out/done; exec sleep 600")
    container_id = vm_runtime.start_detached(bomb, resources={"pids": {"limit": 10}}, out=out)
    scope = vm_runtime.cgroup(container_id)
    assert wait_until(lambda: (out / "done").exists(), timeout=120)
    assert read(scope / "pids.max") == "10"
    assert int(read(scope / "pids.current")) <= 10
    assert keyed(scope / "pids.events")["max"] >= 1
    assert "can't fork" in (out / "errors").read_text()
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_cpu_max_and_weight_hold_what_was_asked(vm_runtime: VmRuntime) -> None:
    cpu = {"shares": 512, "quota": 10000, "period": 100000}
    container_id = vm_runtime.start_detached("while :; do :; done", resources={"cpu": cpu})
    scope = vm_runtime.cgroup(container_id)
    assert read(scope / "cpu.max") == "10000 100000"
    assert read(scope / "cpu.weight") == str(weight_from_shares(512))
    # A busy loop at 10% of a CPU is throttled.
    assert wait_until(lambda: keyed(scope / "cpu.stat")["nr_throttled"] >= 3, timeout=60)
    assert keyed(scope / "cpu.stat")["throttled_usec"] > 0
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_update_with_runc_flags_changes_the_limits_of_a_running_container(vm_runtime: VmRuntime) -> None:
    resources = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}, "cpu": {"shares": 512, "quota": 10000,
                                                                              "period": 100000}}
    container_id = vm_runtime.start_detached("exec sleep 600", resources=resources)
    scope = vm_runtime.cgroup(container_id)
    assert read(scope / "memory.max") == str(64 * MiB)
    vm_runtime.run("update", "--memory", str(128 * MiB), "--pids-limit", "50", "--cpu-quota", "20000",
                   "--cpu-period", "100000", "--cpu-share", "1024", container_id)
    assert read(scope / "memory.max") == str(128 * MiB)
    assert read(scope / "pids.max") == "50"
    assert read(scope / "cpu.max") == "20000 100000"
    assert read(scope / "cpu.weight") == str(weight_from_shares(1024))
    assert vm_runtime.status(container_id) == "running"
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_update_with_a_resources_file(vm_runtime: VmRuntime) -> None:
    container_id = vm_runtime.start_detached("exec sleep 600", resources={"memory": {"limit": 64 * MiB},
                                                                           "pids": {"limit": 20}})
    scope = vm_runtime.cgroup(container_id)
    # What podman writes for `podman update --memory 96m --pids-limit 40 --cpus 0.3`.
    path = vm_runtime.rt.work_dir / "resources.json"
    path.write_text(json.dumps({"memory": {"limit": 96 * MiB}, "pids": {"limit": 40},
                                "cpu": {"quota": 30000, "period": 100000}}))
    vm_runtime.run("update", "--resources", str(path), container_id)
    assert read(scope / "memory.max") == str(96 * MiB)
    assert read(scope / "pids.max") == "40"
    assert read(scope / "cpu.max") == "30000 100000"
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_pause_freezes_and_resume_thaws(vm_runtime: VmRuntime) -> None:
    out = vm_runtime.out_dir()
    container_id = vm_runtime.start_detached(COUNTER, out=out, resources={"pids": {"limit": 50}})
    scope = vm_runtime.cgroup(container_id)
    assert wait_until(lambda: counter(out) >= 2, timeout=60)
    vm_runtime.run("pause", container_id)
    assert vm_runtime.status(container_id) == "paused"
    assert read(scope / "cgroup.freeze") == "1" and keyed(scope / "cgroup.events")["frozen"] == 1
    stopped_at = counter(out)
    time.sleep(2)
    assert counter(out) == stopped_at
    vm_runtime.run("resume", container_id)
    assert vm_runtime.status(container_id) == "running"
    assert keyed(scope / "cgroup.events")["frozen"] == 0
    assert wait_until(lambda: counter(out) > stopped_at + 2, timeout=60)
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_exec_lands_in_the_containers_cgroup(vm_runtime: VmRuntime) -> None:
    container_id = vm_runtime.start_detached("exec sleep 600", resources={"pids": {"limit": 50}})
    scope = vm_runtime.cgroup(container_id)
    result = vm_runtime.run("exec", container_id, "cat", "/proc/self/cgroup")
    assert result.stdout.splitlines()[0] == "0::/" + str(scope.relative_to("/sys/fs/cgroup"))
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_delete_removes_the_scope(vm_runtime: VmRuntime) -> None:
    container_id, scope = vm_runtime.create(["sleep", "600"], resources={"pids": {"limit": 50}})
    vm_runtime.run("delete", "--force", container_id)
    assert not scope.exists()
    assert systemctl_user("show", "-P", "ActiveState", scope_name(container_id)).stdout.strip() == "inactive"


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_lifecycles_leave_no_scope_behind(vm_runtime: VmRuntime) -> None:
    """VMTIER_LIFECYCLES (default 5) run-to-exit cycles, each in its own scope."""
    ids = []
    for _ in range(LIFECYCLES):
        container_id = vm_runtime.new_id()
        bundle = vm_runtime.bundle(["cat", "/proc/self/cgroup"], container_id, resources={"pids": {"limit": 20}})
        result = vm_runtime.run("run", "--bundle", str(bundle), container_id)
        assert result.stdout.strip().endswith("/" + scope_name(container_id)), result.stdout
        vm_runtime.run("delete", container_id, check=False)  # runc's foreground run deletes it already
        ids.append(container_id)
    slice_dir = user_manager_cgroup(vm_runtime.user.uid) / SLICE
    assert wait_until(lambda: not any(expected_scope(vm_runtime.user.uid, i).exists() for i in ids), timeout=30)
    left = [p.name for p in slice_dir.glob(f"{PREFIX}-vm-*.scope")]
    units = systemctl_user("list-units", "--all", "--plain", "--no-legend", f"{PREFIX}-vm-*.scope").stdout
    assert left == [] and units.strip() == "", (left, units)
    assert vm_runtime.run("list", "-q").stdout.split() == []


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
def test_cgroupfs_driver_inside_a_delegated_scope(vm_runtime: VmRuntime) -> None:
    """The cgroupfs driver where the caller runs in a scope systemd delegated to it
    (`systemd-run --user --scope -p Delegate=yes`): the container's cgroup is made in the
    user's own subtree, its limit holds and the container sees it at /sys/fs/cgroup, and
    delete removes it. rootless only: runc's cgroupfs driver wants an absolute cgroupsPath
    the user may write, which a rootless runc user does not have by default."""
    container_id = vm_runtime.new_id()
    bundle = vm_runtime.bundle(["sh", "-c", "cat /sys/fs/cgroup/memory.max; exec sleep 600"], container_id,
                               resources={"memory": {"limit": 48 * MiB}}, systemd=False)
    log = vm_runtime.rt.work_dir / "run.out"
    with open(log, "w") as out:
        started = subprocess.run(["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--",
                                  *vm_runtime.argv("--cgroup-manager", "cgroupfs", "--cgroups-required", "run",
                                                   "--detach", "--bundle", str(bundle), container_id)],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
    assert started.returncode == 0, log.read_text()
    cgroup = cgroup_of(vm_runtime.pid(container_id))
    assert user_manager_cgroup(vm_runtime.user.uid) in cgroup.parents, cgroup
    assert read(cgroup / "memory.max") == str(48 * MiB)
    assert vm_runtime.rt.state(container_id)["status"] == "running"
    seen = vm_runtime.run("exec", container_id, "cat", "/sys/fs/cgroup/memory.max", systemd=False).stdout
    assert seen.strip() == str(48 * MiB)
    vm_runtime.run("delete", "--force", container_id, systemd=False)
    assert not cgroup.exists()
