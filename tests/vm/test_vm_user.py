"""What rootless does today, seen under systemd with cgroup v2: containers of the lingering user
(newuidmap, pasta), `run` as a Type=notify unit of the user's systemd, the delegated
controllers in the user's cgroup. runc, in the same VM, is the baseline."""

import subprocess
import uuid
from pathlib import Path

import pytest

from helpers.users import subordinate_range
from vmlib import BOTH, DELEGATED, VmRuntime, cgroup_of, read, systemctl_user, user_manager_cgroup, wait_until


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_container_runs_as_the_user(vm_runtime: VmRuntime) -> None:
    container_id = vm_runtime.new_id()
    bundle = vm_runtime.bundle(["sh", "-c", "id -u; head -1 /proc/self/uid_map; hostname"], container_id,
                               systemd=False)
    result = vm_runtime.run("run", "--bundle", str(bundle), container_id, systemd=False)
    uid, first_map, hostname = result.stdout.split("\n")[:3]
    assert uid == "0" and first_map.split()[:2] == ["0", str(vm_runtime.user.uid)] and hostname == "rootless"


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
def test_rootless_maps_subordinate_ids_and_starts_pasta(vm_runtime: VmRuntime) -> None:
    """runc maps only the caller and has no network helper: rootless alone here."""
    container_id = vm_runtime.new_id()
    bundle = vm_runtime.bundle(["sh", "-c", "cat /proc/self/uid_map; echo ---; ip -o -4 addr show"], container_id,
                               systemd=False, annotations={"rootless.network": "pasta"})
    result = vm_runtime.run("run", "--bundle", str(bundle), container_id, systemd=False)
    maps, addresses = result.stdout.split("---\n")
    subuids = subordinate_range(vm_runtime.user)
    assert [line.split() for line in maps.splitlines()] == [
        ["0", str(vm_runtime.user.uid), "1"], ["1", str(subuids.start), str(len(subuids))]]
    # pasta copies the VM's address (qemu's user network, tests/vm/guest/image) into the namespace.
    assert "10.0.2.15/24" in addresses, addresses


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_run_is_a_type_notify_unit_active_only_after_ready(vm_runtime: VmRuntime, sdnotify: Path) -> None:
    container_id = vm_runtime.new_id()
    out = vm_runtime.out_dir()
    sender = {"destination": "/sdnotify", "type": "bind", "source": str(sdnotify), "options": ["bind", "ro"]}
    bundle = vm_runtime.bundle(["sh", "-c", "sleep 4; touch /out/before-ready; /sdnotify READY=1; exec sleep 600"],
                               container_id, systemd=False, out=out, extra_mounts=[sender])
    unit = f"vmtier-notify-{uuid.uuid4().hex[:8]}.service"
    started = subprocess.run(["systemd-run", "--user", "--no-block", "--quiet", f"--unit={unit}",
                              "-p", "Type=notify", "-p", "NotifyAccess=all", "-p", "TimeoutStartSec=300",
                              "-p", f"StandardError=append:{out}/unit.err",
                              "--", *vm_runtime.argv("run", "--bundle", str(bundle), container_id)],
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    try:
        seen = []

        def active() -> bool:
            state = systemctl_user("show", "-P", "ActiveState", unit).stdout.strip()
            seen.append((state, (out / "before-ready").exists()))
            return state in ("active", "failed") or (state == "inactive" and len(seen) > 50)

        assert wait_until(active, timeout=300, interval=0.3), seen[-5:]
        errors = (out / "unit.err").read_text() if (out / "unit.err").exists() else ""
        assert seen[-1] == ("active", True), (seen[-5:], errors)
        # It was activating (not active) while the container had not sent READY=1.
        assert ("activating", False) in seen and all(state != "active" for state, ready in seen if not ready)
    finally:
        vm_runtime.run("kill", container_id, "KILL", check=False)
        systemctl_user("stop", unit)
        systemctl_user("reset-failed", unit)


@pytest.mark.parametrize("vm_runtime", BOTH, indirect=True)
def test_the_users_delegated_controllers_are_visible(vm_runtime: VmRuntime) -> None:
    manager = user_manager_cgroup(vm_runtime.user.uid)
    assert DELEGATED <= set(read(manager / "cgroup.controllers").split())
    assert manager.stat().st_uid == vm_runtime.user.uid  # delegated: the user owns its subtree
    out = vm_runtime.out_dir()
    container_id = vm_runtime.start_detached("cat /proc/self/cgroup > /out/cgroup; exec sleep 600", out=out,
                                             systemd=False)
    assert wait_until(lambda: (out / "cgroup").exists() and (out / "cgroup").read_text(), timeout=60)
    # Without a cgroup namespace the container sees the path the host sees; it is in the
    # user's delegated subtree, where every delegated controller is available to it.
    inside = (out / "cgroup").read_text().strip()
    host_view = cgroup_of(vm_runtime.pid(container_id))
    assert inside == "0::/" + str(host_view.relative_to("/sys/fs/cgroup"))
    assert manager in host_view.parents
    assert DELEGATED <= set(read(host_view / "cgroup.controllers").split())
    vm_runtime.run("delete", "--force", container_id)
