"""Units of `rootless generate systemd` (issue 12) under the lingering user's systemd: the unit
is active only once the container sent READY=1, a crash restarts it, `stop` sends the config's
stop signal and leaves nothing behind, the container's processes are in the unit's cgroup with
their limits (Delegate=yes), and an enabled unit is pulled in by the user's default.target,
which the user manager starts at boot for a lingering user.

Boot is shown through default.target, not by a reboot: the tier runs this pytest inside the VM
(qemu -no-reboot, a throw-away snapshot), so a reboot would end the run that has to see it.
rootless only: runc has no `generate`."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import leaks
from vmlib import CGROUP_ROOT, TIMEOUT, VmRuntime, cgroup_of, read, systemctl_user, wait_until

MiB = 1024 * 1024
RUNTIME_LEAF = "rootless:runtime"  # rootless.cgroups.fs.RUNTIME_LEAF


class GeneratedUnit:
    """A unit written by `rootless generate systemd --files` into the user's unit folder."""

    def __init__(self, vm_runtime: VmRuntime, container_id: str, *source: str):
        self.rt, self.id = vm_runtime, container_id
        self.folder = vm_runtime.user.home / ".config" / "systemd" / "user"
        self.folder.mkdir(parents=True, exist_ok=True)
        written = vm_runtime.run("generate", "systemd", *source, "--start-timeout", "300", "--stop-timeout", "60",
                                 "--files", systemd=False, cwd=self.folder).stdout.strip()
        self.path = Path(written)
        self.name = self.path.name
        assert self.path == self.folder / f"container-{container_id}.service", written
        # The unit's output in a file the test reads (the user's journal may not be readable
        # by the user on a volatile journal): a drop-in, the generated unit stays as it is.
        self.log = vm_runtime.out_dir() / "unit.log"
        self.dropin = self.folder / f"{self.name}.d"
        self.dropin.mkdir(exist_ok=True)
        (self.dropin / "test-output.conf").write_text(
            f"[Service]\nStandardOutput=append:{self.log}\nStandardError=append:{self.log}\n")
        systemctl_user("daemon-reload")

    def show(self, *names: str) -> dict[str, str]:
        shown = systemctl_user("show", *(f"--property={n}" for n in names), self.name).stdout
        return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)

    def state(self) -> str:
        return self.show("ActiveState")["ActiveState"]

    def journal(self) -> str:
        """What to show when the unit misbehaves: its output, its status, its cgroup's processes."""
        output = self.log.read_text() if self.log.exists() else "(no output)"
        status = systemctl_user("status", "--no-pager", "--full", "--lines=20", self.name).stdout
        group = self.show("ControlGroup").get("ControlGroup", "")
        tree = subprocess.run(["sh", "-c", f"cd /sys/fs/cgroup{group} 2>/dev/null && grep -r . --include=cgroup.procs"
                                           " --include=cgroup.subtree_control ."], capture_output=True, text=True).stdout
        ps = subprocess.run(["ps", "-u", str(self.rt.user.uid), "-o", "pid,ppid,stat,args"], capture_output=True,
                            text=True).stdout
        return f"output:\n{output}\nstatus:\n{status}\ncgroup:\n{tree}\nps:\n{ps}"

    def remove(self) -> None:
        systemctl_user("stop", self.name)
        systemctl_user("disable", self.name)
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.dropin, ignore_errors=True)
        systemctl_user("daemon-reload")
        systemctl_user("reset-failed", self.name)


@pytest.fixture
def units():
    made: list[GeneratedUnit] = []
    yield made
    for unit in made:
        unit.remove()


def notifying_bundle(vm_runtime: VmRuntime, sdnotify: Path, container_id: str, script: str, **overrides) -> tuple[Path, Path]:
    out = vm_runtime.out_dir()
    sender = {"destination": "/sdnotify", "type": "bind", "source": str(sdnotify), "options": ["bind", "ro"]}
    bundle = vm_runtime.bundle(["sh", "-c", script], container_id, systemd=False, out=out, extra_mounts=[sender],
                               **overrides)
    return bundle, out


def network_pids(vm_runtime: VmRuntime, container_id: str) -> list[int]:
    record = json.loads((vm_runtime.rt.state_dir(container_id) / "state.json").read_text())
    network = record.get("network") or {}
    return [network[k] for k in ("helper_pid", "watcher_pid") if network.get(k)]


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
def test_unit_is_active_after_ready_restarts_after_a_crash_and_stop_leaves_nothing(
        vm_runtime: VmRuntime, sdnotify: Path, units: list) -> None:
    container_id = vm_runtime.new_id()
    # sh is the init: it handles the stop signal (PID 1 of a namespace ignores the others).
    script = ("trap 'echo USR2 >> /out/stopped; exit 0' USR2; sleep 4; touch /out/ready; /sdnotify READY=1; "
              "cat /proc/self/cgroup > /out/cgroup; sleep 600 & wait")
    bundle, out = notifying_bundle(vm_runtime, sdnotify, container_id, script,
                                   resources={"memory": {"limit": 48 * MiB}, "pids": {"limit": 64}},
                                   annotations={"org.opencontainers.image.stopSignal": "SIGUSR2",
                                                "rootless.network": "pasta"})
    unit = GeneratedUnit(vm_runtime, container_id, "--bundle", str(bundle), "--name", container_id)
    units.append(unit)
    began = time.monotonic()
    started = systemctl_user("start", "--no-block", unit.name)
    assert started.returncode == 0, started.stderr

    # Active only after READY=1: activating while the container sleeps before it notifies.
    seen = []

    def settled() -> bool:
        seen.append((unit.state(), (out / "ready").exists()))
        return seen[-1][0] in ("active", "failed") or (seen[-1][0] == "inactive" and len(seen) > 50)

    if not wait_until(settled, timeout=TIMEOUT, interval=0.3):
        # pytest.fail: an assertion's message would be cut short, and the unit's output with it.
        pytest.fail(f"not active after {TIMEOUT} s: {seen[-5:]}\n{unit.journal()}", pytrace=False)
    assert seen[-1] == ("active", True), (seen[-5:], unit.journal())
    assert ("activating", False) in seen and all(state != "active" for state, ready in seen if not ready), seen
    print(f"start to active: {time.monotonic() - began:.1f} s")  # the measurements, for -rA

    # The init is the main process, in the unit's cgroup (Delegate=yes), with its limits.
    shown = unit.show("MainPID", "ControlGroup", "Delegate", "NRestarts", "Type")
    main = int(shown["MainPID"])
    assert main == vm_runtime.pid(container_id) and shown["Delegate"] == "yes" and shown["Type"] == "notify"
    service = CGROUP_ROOT / shown["ControlGroup"].lstrip("/")
    assert cgroup_of(main) == service / container_id
    assert read(service / container_id / "memory.max") == str(48 * MiB)
    assert read(service / container_id / "pids.max") == "64"
    assert wait_until(lambda: (out / "cgroup").exists() and (out / "cgroup").read_text(), timeout=60)
    assert (out / "cgroup").read_text().strip() == f"0::{shown['ControlGroup']}/{container_id}"
    # The runtime stepped out of the service's cgroup so it could enable controllers: nothing
    # runs in the service's cgroup itself; pasta and its watcher are in the runtime's leaf.
    helpers = network_pids(vm_runtime, container_id)
    assert read(service / "cgroup.procs") == ""
    assert len(helpers) == 2 and all(cgroup_of(pid) == service / RUNTIME_LEAF for pid in helpers)

    # A crash (the init killed) restarts it: a new main PID, active again.
    os.kill(main, signal.SIGKILL)
    crashed = time.monotonic()

    def restarted() -> bool:
        now = unit.show("ActiveState", "MainPID", "NRestarts")
        return now["ActiveState"] == "active" and int(now["NRestarts"]) >= 1 and int(now["MainPID"]) not in (0, main)

    if not wait_until(restarted, timeout=TIMEOUT, interval=0.5):
        pytest.fail(f"not restarted: {unit.show('ActiveState', 'NRestarts')}\n{unit.journal()}", pytrace=False)
    print(f"crash to active again: {time.monotonic() - crashed:.1f} s")
    new_main = int(unit.show("MainPID")["MainPID"])
    assert new_main == vm_runtime.pid(container_id) and cgroup_of(new_main) == service / container_id
    assert read(service / container_id / "memory.max") == str(48 * MiB)
    helpers = network_pids(vm_runtime, container_id)
    assert not alive(main)

    # stop: the config's stop signal (the trap answers it, well before the timeout), then nothing is left.
    began = time.monotonic()
    stopped = systemctl_user("stop", unit.name)
    took = time.monotonic() - began
    assert stopped.returncode == 0, stopped.stderr
    assert (out / "stopped").read_text() == "USR2\n", (took, unit.journal())
    print(f"stop: {took:.1f} s")
    # success: the init exited 0 from its trap (SIGKILL after the timeout would say "timeout").
    after = unit.show("ActiveState", "Result")
    assert after == {"ActiveState": "inactive", "Result": "success"}, (after, unit.journal())
    assert not service.exists()  # the unit's cgroup, the container's and the runtime's leaf
    assert not vm_runtime.rt.state_dir(container_id).exists()
    assert container_id not in vm_runtime.run("list", "-q", systemd=False).stdout.split()
    assert [pid for pid in (new_main, *helpers) if alive(pid)] == []
    assert leaks.find_leaks(container_id, state_dir=vm_runtime.rt.state_dir(container_id), bundle=bundle) == []


@pytest.mark.parametrize("vm_runtime", ["rootless"], indirect=True)
def test_an_enabled_unit_of_a_container_id_starts_with_the_users_default_target(
        vm_runtime: VmRuntime, sdnotify: Path, units: list) -> None:
    container_id = vm_runtime.new_id()
    bundle, out = notifying_bundle(vm_runtime, sdnotify, container_id,
                                   "trap 'exit 0' TERM; /sdnotify READY=1; sleep 600 & wait")
    # The unit is generated from a container's id (its bundle comes from the state), which then
    # makes room for the unit's own.
    vm_runtime.run("create", "--bundle", str(bundle), container_id, systemd=False)
    unit = GeneratedUnit(vm_runtime, container_id, container_id)
    units.append(unit)
    vm_runtime.run("delete", "--force", container_id, systemd=False)

    # Lingering: the user's manager runs without a session, from boot.
    linger = subprocess.run(["loginctl", "show-user", str(vm_runtime.user.uid), "--property=Linger", "--value"],
                            capture_output=True, text=True).stdout.strip()
    assert linger == "yes"
    enabled = systemctl_user("enable", unit.name)
    assert enabled.returncode == 0, enabled.stderr
    assert systemctl_user("is-enabled", unit.name).stdout.strip() == "enabled"
    assert (unit.folder / "default.target.wants" / unit.name).resolve() == unit.path
    wanted = systemctl_user("list-dependencies", "--plain", "default.target").stdout.split()
    assert unit.name in wanted
    assert unit.state() == "inactive"

    # What the manager does at boot: start default.target, which pulls the unit in.
    systemctl_user("start", "--no-block", "default.target")
    assert wait_until(lambda: unit.state() in ("active", "failed"), timeout=TIMEOUT, interval=0.5), unit.journal()
    assert unit.state() == "active", unit.journal()
    assert int(unit.show("MainPID")["MainPID"]) == vm_runtime.pid(container_id)
    stopped = systemctl_user("stop", unit.name)
    assert stopped.returncode == 0 and unit.show("Result")["Result"] == "success", unit.journal()
    assert not vm_runtime.rt.state_dir(container_id).exists()
