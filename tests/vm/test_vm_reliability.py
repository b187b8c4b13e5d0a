"""Issue 13's edges where cgroups exist: `delete -f` of a container whose state.json is
corrupt finds its cgroup (a systemd scope, or a cgroupfs directory) by what still names it,
kills everything in it frozen and removes it; `exec` on a paused container, with and without
--ignore-paused, as runc; and a soak with the cgroup leak counter (VMTIER_SOAK lifecycles)."""

import json
import os
import subprocess
import time

import pytest

from helpers.leaks import CgroupCounter
from vmlib import (BOTH, VmRuntime, cgroup_of, read, scope_name, systemctl_user, user_manager_cgroup,
                   wait_until)

SOAK = int(os.environ.get("VMTIER_SOAK", "4"))
FORKS = "sleep 600 & sleep 600 & exec sleep 600"


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _corrupt(vm_runtime: VmRuntime, container_id: str, lost: str) -> None:
    folder = vm_runtime.rt.state_dir(container_id)
    path = folder / "state.json"
    text = path.read_text()
    if lost == "state":
        path.write_text(text[: len(text) // 3])  # truncated: no record, the cgroup's path may be cut off
    elif lost == "state+config":
        path.write_text("{" + text[1:].replace('"pid"', '"qid"'))  # garbled but names the cgroup's path
        (folder / "config.json").unlink()
    else:  # everything but the init's own cgroup: found through the init (the `init` link)
        path.write_text("garbage")
        (folder / "config.json").unlink()


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
@pytest.mark.parametrize("lost", ["state", "state+config", "state+config+text"])
def test_delete_force_of_a_corrupt_state_removes_the_scope_and_what_runs_in_it(vm_runtime: VmRuntime,
                                                                                lost: str) -> None:
    container_id = vm_runtime.start_detached(FORKS, resources={"pids": {"limit": 50}})
    scope = vm_runtime.cgroup(container_id)
    assert wait_until(lambda: len(read(scope / "cgroup.procs").split()) >= 3, timeout=60)
    inside = [int(p) for p in read(scope / "cgroup.procs").split()]
    _corrupt(vm_runtime, container_id, lost)
    assert vm_runtime.run("state", container_id, check=False).returncode != 0
    result = vm_runtime.run("delete", "--force", container_id, check=False)
    assert result.returncode == 0, result.stderr
    if lost == "state+config+text":  # nothing left says whether it had hooks: one line says so
        assert "poststop hooks, if the container has any, not run" in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    else:
        assert result.stderr == "", result.stderr
    assert wait_until(lambda: not any(_alive(p) for p in inside), timeout=30), [p for p in inside if _alive(p)]
    assert wait_until(lambda: not scope.exists(), timeout=30)
    assert systemctl_user("show", "-P", "ActiveState", scope_name(container_id)).stdout.strip() == "inactive"
    assert not vm_runtime.rt.state_dir(container_id).exists()


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
def test_delete_force_of_a_corrupt_state_removes_a_cgroupfs_directory(vm_runtime: VmRuntime) -> None:
    """The cgroupfs driver inside a delegated scope: the directory is found from the saved
    config (cgroupsPath empty: the container's id beside the caller's scope)."""
    container_id = vm_runtime.new_id()
    bundle = vm_runtime.bundle(["sh", "-c", FORKS], container_id, resources={"pids": {"limit": 50}}, systemd=False)
    argv = vm_runtime.argv("--cgroup-manager", "cgroupfs", "--cgroups-required", "run", "--detach", "--bundle",
                           str(bundle), container_id)
    scope = ["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--"]
    log = vm_runtime.rt.work_dir / "run.out"
    with open(log, "w") as out:  # a file: the detached container keeps what it inherits open
        started = subprocess.run(scope + argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 timeout=300)
    assert started.returncode == 0, log.read_text()
    cgroup = cgroup_of(vm_runtime.pid(container_id))
    assert cgroup.name == container_id and user_manager_cgroup(vm_runtime.user.uid) in cgroup.parents, cgroup
    assert wait_until(lambda: len(read(cgroup / "cgroup.procs").split()) >= 3, timeout=60)
    inside = [int(p) for p in read(cgroup / "cgroup.procs").split()]
    (vm_runtime.rt.state_dir(container_id) / "state.json").write_text("[")
    result = vm_runtime.run("delete", "--force", container_id, systemd=False, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    assert wait_until(lambda: not any(_alive(p) for p in inside), timeout=30)
    assert not cgroup.exists()


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_exec_in_a_paused_container_is_refused_as_runc_refuses_it(vm_runtime: VmRuntime) -> None:
    container_id = vm_runtime.start_detached("exec sleep 600", resources={"pids": {"limit": 50}})
    vm_runtime.run("pause", container_id)
    result = vm_runtime.run("exec", container_id, "echo", "ok", check=False)
    assert result.returncode == 255, (result.returncode, result.stderr)
    assert "cannot exec in a paused container (use --ignore-paused to override)" in result.stderr, result.stderr
    assert result.stdout == ""
    vm_runtime.run("resume", container_id)
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_exec_ignore_paused_waits_for_resume(vm_runtime: VmRuntime) -> None:
    """As runc: the process joins the frozen cgroup, so it runs only once the container is
    resumed; exec then returns its output and status."""
    container_id = vm_runtime.start_detached("exec sleep 600", resources={"pids": {"limit": 50}})
    vm_runtime.run("pause", container_id)
    out = vm_runtime.rt.work_dir / "exec.out"
    with open(out, "w") as stdout:
        execed = vm_runtime.popen("exec", "--ignore-paused", container_id, "echo", "ok", stdout=stdout)
        time.sleep(10)
        assert execed.poll() is None, out.read_text()
        assert vm_runtime.status(container_id) == "paused"
        vm_runtime.run("resume", container_id)
        assert execed.wait(timeout=120) == 0, out.read_text()
    assert out.read_text() == "ok\n"
    vm_runtime.run("delete", "--force", container_id)


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
def test_soak_with_the_cgroup_leak_counter(vm_runtime: VmRuntime) -> None:
    """VMTIER_SOAK lifecycles (run -d with limits, exec, kill, delete) under the systemd
    driver; every container had a scope of its own, and none is left."""
    counter = CgroupCounter()
    for _ in range(SOAK):
        container_id = vm_runtime.start_detached("exec sleep 600", resources={"pids": {"limit": 20},
                                                                               "memory": {"limit": 64 << 20}})
        counter.note(container_id, vm_runtime.pid(container_id))
        result = vm_runtime.run("exec", container_id, "cat", "/proc/self/cgroup")
        assert result.stdout.strip().endswith("/" + scope_name(container_id)), result.stdout
        vm_runtime.run("kill", container_id, "KILL")
        assert wait_until(lambda: vm_runtime.status(container_id) == "stopped", timeout=60)
        vm_runtime.run("delete", container_id)
    print(f"vm soak: {SOAK} lifecycles; {counter.summary()}")
    assert counter.checked == SOAK, counter.summary()
    assert wait_until(lambda: not counter.left(), timeout=30), counter.left()
    assert vm_runtime.run("list", "-q").stdout.split() == []
