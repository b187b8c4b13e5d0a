"""The systemd driver's D-Bus side against a real dbus-daemon and a stand-in for systemd's
manager (helpers/fake_systemd.py): this host has no systemd, so what systemd then does with
the scope is checked in the VM tier (tests/vm). Here: the calls and their properties, the wait
for JobRemoved, the errors, and the UID the bus must see from inside podman's user namespace."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.users import User, chown_tree, clean_env, command_as

HELPERS = Path(__file__).resolve().parents[1] / "helpers"

pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian dbus-daemon)")


class Bus:
    """A private session bus with the fake manager on it, both run as `user`."""

    def __init__(self, user: User, folder: Path, cgroup_base: Path | None = None):
        self.folder = folder
        self.address = f"unix:path={folder}/bus"
        self.record = folder / "calls.jsonl"
        # The test user may not enter the clone: the helper runs from a copy, rootless from the venv.
        script = folder / "fake_systemd.py"
        shutil.copy(HELPERS / "fake_systemd.py", script)
        chown_tree(script, user)
        env = clean_env(user)
        self.daemon = subprocess.Popen(command_as(user, ["dbus-daemon", "--session", f"--address={self.address}",
                                                         "--nofork", "--print-address=1"]),
                                       stdout=subprocess.PIPE, text=True, env=env)
        assert self.daemon.stdout.readline().startswith("unix:"), "dbus-daemon did not start"
        self.manager = subprocess.Popen(command_as(user, [sys.executable, str(script),
                                                          self.address, str(self.record),
                                                          *([str(cgroup_base)] if cgroup_base else [])]),
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert self.manager.stdout.readline().strip() == "ready", "the fake manager did not start"

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.record.read_text().splitlines()] if self.record.exists() else []

    def stop(self) -> None:
        for proc in (self.manager, self.daemon):
            proc.kill()
            proc.wait()


@pytest.fixture
def folder(test_user: User):
    path = Path(tempfile.mkdtemp(prefix="bus-", dir="/var/tmp"))
    os.chmod(path, 0o755)
    chown_tree(path, test_user)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root_bus(folder: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root (the bus runs as the caller)")
    from helpers.users import root_user
    bus = Bus(root_user(), folder)
    yield bus
    bus.stop()


def test_a_scope_is_started_with_runc_s_properties_and_its_job_awaited(root_bus: Bus, tmp_path: Path) -> None:
    from rootless.cgroups import manager, systemd
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cgroup").write_text("0::/user.slice/libpod-abc.scope\n")
    config = {"linux": {"cgroupsPath": "user.slice:libpod:abc",
                        "resources": {"memory": {"limit": 64 << 20}, "pids": {"limit": 10}}},
              "annotations": {"org.systemd.property.CollectMode": "'inactive-or-failed'"}}
    fake_mount = tmp_path / "cgroup"
    fake_mount.mkdir()
    (fake_mount / "cgroup.controllers").write_text("memory pids\n")
    plan = manager.plan(config, "abc", "systemd", rootless=True, env={"DBUS_SESSION_BUS_ADDRESS": root_bus.address},
                        mount=str(fake_mount), proc=str(proc))
    assert (plan.driver, plan.slice, plan.unit, plan.address) == ("systemd", "user.slice", "libpod-abc.scope",
                                                                  root_bus.address)
    path = systemd.start(plan, "abc", 4242, str(proc), str(fake_mount))
    assert path == f"{fake_mount}/user.slice/libpod-abc.scope"
    calls = root_bus.calls()
    assert [c["member"] for c in calls] == ["Subscribe", "StartTransientUnit"]
    unit, mode, properties, aux = calls[1]["body"]
    assert (unit, mode, aux) == ("libpod-abc.scope", "replace", [])
    props = {name: value for name, (_sig, value) in properties}
    assert props["PIDs"] == [4242] and props["Delegate"] is True and props["Slice"] == "user.slice"
    assert props["DefaultDependencies"] is False and props["Description"] == "rootless container abc"
    assert props["MemoryMax"] == 64 << 20 and props["TasksMax"] == 10
    assert props["CollectMode"] == "inactive-or-failed"  # the annotation, passed through
    # A unit left loaded by an earlier container: reset, then started again.
    systemd.start(plan, "abc", 4242, str(proc), str(fake_mount))
    assert [c["member"] for c in root_bus.calls()[2:]] == ["Subscribe", "StartTransientUnit", "ResetFailedUnit",
                                                           "StartTransientUnit"]
    entry = {"unit": "libpod-abc.scope", "address": root_bus.address, "uid": 0, "path": path}
    systemd.set_properties(entry, manager.resources.translate({"pids": {"limit": 20}}).writes)
    systemd.attach(entry, 4343)  # exec from a caller that may not move itself
    systemd.stop(entry)
    systemd.stop(entry)  # gone already: fine
    calls = root_bus.calls()[6:]
    assert [c["member"] for c in calls] == ["Subscribe", "SetUnitProperties", "Subscribe", "AttachProcessesToUnit",
                                            "Subscribe", "StopUnit", "ResetFailedUnit", "Subscribe", "StopUnit"]
    assert calls[1]["body"] == ["libpod-abc.scope", True, [["TasksMax", ["t", 20]]]]
    assert calls[3]["body"] == ["libpod-abc.scope", "", [4343]]


def test_a_failed_job_and_a_refused_uid_are_one_line_errors(root_bus: Bus) -> None:
    from rootless.cgroups import dbus
    from rootless.errors import RootlessError
    with dbus.Manager(root_bus.address, 0) as bus_manager:
        with pytest.raises(RootlessError, match="systemd: start fail.scope: job failed"):
            bus_manager.start_transient("fail.scope", [("PIDs", ("au", [1]))])
    with pytest.raises(RootlessError, match="the D-Bus bus refused UID 12345"):
        dbus.Manager(root_bus.address, 12345)
    with pytest.raises(RootlessError, match="connect to the D-Bus bus"):
        dbus.Manager("unix:path=/nonexistent/bus", 0)


def test_inside_podman_s_user_namespace_the_host_uid_authenticates(test_user: User, folder: Path) -> None:
    """Under podman the runtime is UID 0 in a user namespace; the user's bus sees the socket's
    peer as the host UID and accepts only that claim: read it from /proc/self/uid_map."""
    bus = Bus(test_user, folder)
    try:
        code = (
            "import os\n"
            "from rootless.cgroups import dbus, host\n"
            "from jeepney.io.blocking import open_dbus_connection\n"
            "assert os.geteuid() == 0\n"
            f"address = {bus.address!r}\n"
            "uid = host.read_host_uid()\n"
            "with dbus.Manager(address, uid):\n"
            "    pass\n"
            "os.environ['DBUS_SESSION_BUS_ADDRESS'] = address\n"
            "try:\n"
            "    open_dbus_connection('SESSION')\n"
            "    print(uid, 'euid-accepted')\n"
            "except Exception:\n"
            "    print(uid, 'euid-refused')\n"
        )
        result = subprocess.run(command_as(test_user, ["unshare", "--user", "--map-root-user", sys.executable, "-c",
                                                       code]),
                                capture_output=True, text=True, env=clean_env(test_user),
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(test_user.uid), "euid-refused"]
        assert [c["member"] for c in bus.calls()] == ["Subscribe"]
    finally:
        bus.stop()
