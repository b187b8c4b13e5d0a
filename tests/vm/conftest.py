"""The systemd tier's fixtures (see tests/vm/run). These tests need systemd as PID 1, cgroup v2
and a user manager that delegates controllers: they are collected only in the VM, where
tests/vm/guest/run-tier sets ROOTLESS_VMTIER=1. On the host (tests/run collects tests/) this
folder is ignored.

  vm_runtime   runc or rootless (parametrized by each test, indirect) as the VM's lingering
               user: vmlib.VmRuntime, a helpers.runtime.Runtime with the systemd driver's
               bundles and cgroup lookups
  sdnotify     a static sd_notify sender (tests/helpers/sdnotify.c) for busybox containers
  podman       podman as the user, with the runtime of the test's parameter
  root_podman  podman as root (tests marked vmroot, run by run-tier's second pass), likewise
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

if not os.environ.get("ROOTLESS_VMTIER"):
    collect_ignore_glob = ["*"]
else:
    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line("markers", "vmroot: runs in the tier's second pass, as root (run-tier)")

    def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
        """The user's pass runs what is not marked vmroot, root's pass only what is."""
        as_root = os.geteuid() == 0
        keep = [item for item in items if (item.get_closest_marker("vmroot") is not None) == as_root]
        dropped = [item for item in items if item not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    from helpers.runtime import RUNC, Runtime
    from helpers.users import root_user
    from vmlib import Podman, VmRuntime

    HELPERS = Path(__file__).resolve().parent.parent / "helpers"

    @pytest.fixture
    def vm_runtime(request: pytest.FixtureRequest, rootless_bin: str, test_user, busybox_rootfs: Path,
                   scratch_root: Path):
        name = request.param
        binary = RUNC if name == "runc" else rootless_bin
        work_dir = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:50] + "-",
                                         dir=scratch_root))
        os.chmod(work_dir, 0o755)
        state_root = Path(tempfile.mkdtemp(prefix="state-", dir=test_user.runtime_dir))
        runtime = VmRuntime(name, Runtime("rootless", test_user, binary, state_root, work_dir, busybox_rootfs))
        yield runtime
        problems = runtime.cleanup()
        assert not problems, problems

    @pytest.fixture(scope="session")
    def sdnotify(scratch_root: Path) -> Path:
        binary = scratch_root / "sdnotify"
        subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(HELPERS / "sdnotify.c")], check=True)
        return binary

    @pytest.fixture(scope="module")
    def podman_image(test_user, busybox_rootfs_tar: Path, scratch_root: Path):
        """A podman storage with the busybox image imported once per module."""
        home = Path(tempfile.mkdtemp(prefix="podman-", dir=scratch_root))
        os.chmod(home, 0o755)
        shutil.copy(busybox_rootfs_tar, home / "rootfs.tar")
        yield home
        subprocess.run(["podman", "unshare", "rm", "-rf", str(home)], capture_output=True)

    @pytest.fixture
    def podman(request: pytest.FixtureRequest, rootless_bin: str, test_user, podman_image: Path):
        binary = RUNC if request.param == "runc" else rootless_bin
        client = Podman(test_user, binary, podman_image)
        yield client
        client("rm", "--all", "--force", "--time", "0", timeout=300)

    @pytest.fixture(scope="module")
    def root_podman_image(busybox_rootfs_tar: Path, scratch_root: Path):
        home = Path(tempfile.mkdtemp(prefix="podman-root-", dir=scratch_root))
        shutil.copy(busybox_rootfs_tar, home / "rootfs.tar")
        yield home
        subprocess.run(["rm", "-rf", str(home)], capture_output=True)

    @pytest.fixture
    def root_podman(request: pytest.FixtureRequest, rootless_bin: str, root_podman_image: Path):
        assert os.geteuid() == 0, "root_podman is for tests marked vmroot"
        binary = RUNC if request.param == "runc" else rootless_bin
        client = Podman(root_user(), binary, root_podman_image)
        yield client
        client("rm", "--all", "--force", "--time", "0", timeout=300)
