"""Fixtures for the functional tests (see tests/helpers for the plain functions behind them).

  rootless_bin       path of the runtime under test
  test_user          the unprivileged user rootless containers run as (helpers.users.User)
  busybox_rootfs     a shared busybox rootfs the test user can read; bundles point at it
  busybox_rootfs_tar the same as a tarball (podman import)
  runtime            the runtime as the test user ("rootless") and as root ("root"); see
                     helpers.runtime.Runtime for run/popen/bundle/state/assert_no_leaks
  rootless_runtime   the same, as the test user only (what concerns unprivileged callers)
  root_runtime       the same, as root only (what concerns real root without a user namespace)
"""

import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.rootfs import BUSYBOX, build_busybox_rootfs, write_rootfs_tar
from helpers.runtime import MODES, Runtime, remove_tree
from helpers.users import User, chown_tree, find_test_user, root_user

SCRATCH_PARENT = "/var/tmp"  # pytest's tmp_path (/tmp/pytest-of-root) is closed to the test user


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "harness: tests of the test harness itself (run with runc, not rootless)")


def find_rootless_bin() -> str | None:
    """$ROOTLESS_BIN, else bin/rootless of the venv running the tests, else rootless on PATH."""
    if os.environ.get("ROOTLESS_BIN"):
        return os.environ["ROOTLESS_BIN"]
    beside = Path(sys.executable).parent / "rootless"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("rootless")


@pytest.fixture(scope="session")
def rootless_bin() -> str:
    found = find_rootless_bin()
    if found is None:
        pytest.skip("the rootless command is not installed: run tests/run (or set ROOTLESS_BIN)")
    return found


@pytest.fixture(scope="session")
def test_user() -> User:
    try:
        return find_test_user()
    except LookupError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def scratch_root() -> Iterator[Path]:
    """A session folder under /var/tmp that every user can enter; removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="rootless-tests-", dir=SCRATCH_PARENT))
    os.chmod(path, 0o755)
    yield path
    for problem in remove_tree(path):
        warnings.warn(problem)


@pytest.fixture(scope="session")
def busybox_rootfs(scratch_root: Path, test_user: User) -> Path:
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"{BUSYBOX} is missing: install busybox-static (tests/run does)")
    owner = (test_user.uid, test_user.gid) if os.geteuid() == 0 else None
    return build_busybox_rootfs(scratch_root / "rootfs", owner)


@pytest.fixture(scope="session")
def busybox_rootfs_tar(scratch_root: Path, busybox_rootfs: Path) -> Path:
    return write_rootfs_tar(busybox_rootfs, scratch_root / "busybox-rootfs.tar")


def _state_root(user: User, work_dir: Path) -> Path:
    """A fresh state root owned by `user`: under its runtime dir (under the test's work_dir if
    it has none), or under /run for root."""
    if user.is_root:
        parent = Path("/run/rootless-tests")
    elif user.runtime_dir.is_dir():
        parent = user.runtime_dir / "rootless-tests"
    else:
        parent = work_dir
    parent.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0 and parent.stat().st_uid != user.uid:
        os.chown(parent, user.uid, user.gid)
    path = Path(tempfile.mkdtemp(prefix="state-", dir=parent))
    chown_tree(path, user)
    return path


def _runtime(mode: str, request: pytest.FixtureRequest, test_user: User, busybox_rootfs: Path,
             scratch_root: Path) -> Iterator[Runtime]:
    if mode == "root" and os.geteuid() != 0:
        pytest.skip("needs root: run tests/run as root to test root containers")
    user = test_user if mode == "rootless" else root_user()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]
    work_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch_root))
    os.chmod(work_dir, 0o755)
    chown_tree(work_dir, user)
    rt = Runtime(mode, user, find_rootless_bin(), _state_root(user, work_dir), work_dir, busybox_rootfs)
    yield rt
    problems = rt.cleanup()
    if problems:
        warnings.warn(f"teardown of {request.node.nodeid}:\n  " + "\n  ".join(problems))


@pytest.fixture(params=MODES, ids=MODES)
def runtime(request: pytest.FixtureRequest, test_user: User, busybox_rootfs: Path,
            scratch_root: Path) -> Iterator[Runtime]:
    yield from _runtime(request.param, request, test_user, busybox_rootfs, scratch_root)


@pytest.fixture
def rootless_runtime(request: pytest.FixtureRequest, test_user: User, busybox_rootfs: Path,
                     scratch_root: Path) -> Iterator[Runtime]:
    """The runtime as the unprivileged test user only, for what concerns unprivileged callers."""
    yield from _runtime("rootless", request, test_user, busybox_rootfs, scratch_root)


@pytest.fixture
def root_runtime(request: pytest.FixtureRequest, test_user: User, busybox_rootfs: Path,
                 scratch_root: Path) -> Iterator[Runtime]:
    """The runtime as root only, for what concerns real root without a user namespace."""
    yield from _runtime("root", request, test_user, busybox_rootfs, scratch_root)
