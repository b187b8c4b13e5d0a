"""HARNESS TESTS: they test the test harness, not rootless.

Debian's runc runs through the same `runtime` fixture the rootless tests use (as the
unprivileged test user, and as root), on the same busybox rootfs and bundles, so that users,
bundles, state roots and cleanup are known to work before and apart from rootless itself.
They carry the marker `harness` (deselect them with -m "not harness").
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.runtime import RUNC, Runtime
from helpers.users import User

pytestmark = [pytest.mark.harness,
              pytest.mark.skipif(not os.access(RUNC, os.X_OK), reason=f"{RUNC} is missing (tests/run installs runc)")]


def runc_bundle(runtime: Runtime, args: list[str]) -> Path:
    """runtime.bundle for runc: a rootless runc needs explicit maps (rootless makes its own);
    map the caller only, as `runc spec --rootless` does."""
    runtime.binary = RUNC
    if not runtime.rootless:
        return runtime.bundle(args)
    maps = {"uidMappings": [{"containerID": 0, "hostID": runtime.user.uid, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]}
    return runtime.bundle(args, linux=maps)


def test_harness_runc_run_sees_root_and_hostname(runtime: Runtime) -> None:
    bundle = runc_bundle(runtime, ["sh", "-c", "id -u; hostname; cat /proc/self/uid_map"])
    container_id = runtime.new_id("harness")
    result = runtime.run("run", "--bundle", bundle, container_id, check=True)
    uid, hostname, uid_map = result.stdout.splitlines()
    assert uid == "0"
    assert hostname == "rootless"
    expected_map = [0, runtime.user.uid, 1] if runtime.rootless else [0, 0, 2**32 - 1]
    assert [int(n) for n in uid_map.split()] == expected_map
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_harness_runc_lifecycle_leaves_nothing(runtime: Runtime) -> None:
    bundle = runc_bundle(runtime, ["sleep", "600"])
    container_id = runtime.new_id("harness")
    runtime.run("create", "--bundle", bundle, container_id, check=True)  # stdio through files: no hang
    created = runtime.state(container_id)
    assert created["status"] == "created"
    runtime.run("start", container_id, check=True)
    assert runtime.wait_for_status(container_id, "running")["status"] == "running"
    assert runtime.run("list", "-q", check=True).stdout.split() == [container_id]
    runtime.run("kill", container_id, "KILL", check=True)
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(created["pid"],))


def test_harness_teardown_deletes_what_a_test_left(runtime: Runtime) -> None:
    """A container left running is deleted by the fixture; the state root goes with it."""
    bundle = runc_bundle(runtime, ["sleep", "600"])
    runtime.run("run", "--detach", "--bundle", bundle, runtime.new_id("harness"), check=True)
    assert runtime.state_root.is_dir()
    problems = runtime.cleanup()
    assert problems == []
    assert not runtime.state_root.exists() and not runtime.work_dir.exists()


def test_harness_busybox_rootfs(busybox_rootfs: Path, test_user: User, busybox_rootfs_tar: Path) -> None:
    assert os.readlink(busybox_rootfs / "bin" / "sh") == "busybox"
    assert not (busybox_rootfs / "bin" / "busybox").is_symlink()
    assert not list(busybox_rootfs.rglob("python*"))
    assert (busybox_rootfs / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    if os.geteuid() == 0:
        assert busybox_rootfs.stat().st_uid == test_user.uid
    listing = subprocess.run(["tar", "-tvf", busybox_rootfs_tar], capture_output=True, text=True, check=True).stdout
    assert " root/root " in listing and "bin/sh -> busybox" in listing


@pytest.mark.parametrize("rootless", [False, True], ids=["root", "rootless"])
def test_harness_make_config_is_runc_spec(tmp_path: Path, rootless: bool) -> None:
    """make_config is `runc spec [--rootless]` but for the differences listed here."""
    subprocess.run([RUNC, "spec", "--bundle", tmp_path] + (["--rootless"] if rootless else []), check=True)
    runc = json.loads((tmp_path / "config.json").read_text())
    ours = make_config(["sh"], rootless=rootless, terminal=True)
    # Differences on purpose: version, hostname, no ambient capabilities, no device cgroup
    # rules (rootless manages no cgroups), and for rootless a network namespace but no maps.
    for config in (runc, ours):
        del config["ociVersion"], config["hostname"]
        config["process"]["capabilities"].pop("ambient", None)
        config["linux"].pop("resources", None)
        config["linux"].pop("uidMappings", None)
        config["linux"].pop("gidMappings", None)
        config["linux"]["namespaces"] = sorted(n["type"] for n in config["linux"]["namespaces"])
    if rootless:
        runc["linux"]["namespaces"] = sorted(runc["linux"]["namespaces"] + ["network"])
    assert ours == runc
