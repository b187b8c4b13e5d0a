"""Fixtures of the differential harness (one runc side and one rootless side per module, so a
batch of cases shares users, state roots and scratch folders) and the table of cases printed
at the end of the run."""

import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from diff_table import VERDICTS
from helpers.differential import Side
from helpers.runtime import RUNC, Runtime
from helpers.users import User, chown_tree, root_user

OUTCOMES: dict[str, str] = {}


def _root_conftest(config: pytest.Config):
    """tests/conftest.py as pytest loaded it (its state-root maker is shared, not copied)."""
    return config.pluginmanager.get_plugin(str(Path(__file__).resolve().parent.parent / "conftest.py"))


def _side(config: pytest.Config, name: str, binary: str, user: User, busybox_rootfs: Path,
          scratch_root: Path) -> Runtime:
    work_dir = Path(tempfile.mkdtemp(prefix=f"diff-{name}-", dir=scratch_root))
    os.chmod(work_dir, 0o755)
    chown_tree(work_dir, user)
    state_root = _root_conftest(config)._state_root(user, work_dir)
    return Runtime("root" if user.is_root else "rootless", user, binary, state_root, work_dir, busybox_rootfs)


def _sides(request: pytest.FixtureRequest, rootless_bin: str, user: User, busybox_rootfs: Path,
           scratch_root: Path) -> Iterator[tuple[Side, Side]]:
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is missing (tests/run installs runc)")
    runtimes = [_side(request.config, name, binary, user, busybox_rootfs, scratch_root)
                for name, binary in (("runc", RUNC), ("rootless", rootless_bin))]
    yield Side("runc", runtimes[0]), Side("rootless", runtimes[1])
    for runtime in runtimes:
        problems = runtime.cleanup()
        if problems:
            warnings.warn(f"teardown of the differential {runtime.binary} side:\n  " + "\n  ".join(problems))


@pytest.fixture(scope="module")
def sides(request: pytest.FixtureRequest, rootless_bin: str, test_user: User, busybox_rootfs: Path,
          scratch_root: Path) -> Iterator[tuple[Side, Side]]:
    """(runc, rootless), both as the unprivileged test user."""
    yield from _sides(request, rootless_bin, test_user, busybox_rootfs, scratch_root)


@pytest.fixture(scope="module")
def root_sides(request: pytest.FixtureRequest, rootless_bin: str, busybox_rootfs: Path,
               scratch_root: Path) -> Iterator[tuple[Side, Side]]:
    """(runc, rootless), both as root, each in a mount namespace without the v1 memory
    controller (helpers.runtime: runc as root would make a memory cgroup this host forbids)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: run tests/run as root to compare root containers")
    yield from _sides(request, rootless_bin, root_user(), busybox_rootfs, scratch_root)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        OUTCOMES[item.nodeid] = "xfail" if hasattr(report, "wasxfail") and report.outcome == "skipped" else \
            ("xpass" if hasattr(report, "wasxfail") else report.outcome)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not VERDICTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("differential harness: rootless against runc")
    counts: dict[str, int] = {}
    width = max(len(name) for name, _ in VERDICTS.values())
    for nodeid, (name, verdict) in VERDICTS.items():
        outcome = OUTCOMES.get(nodeid, "not run")
        shown = verdict
        if outcome == "failed":
            shown = f"{verdict}: FAILED"
        elif outcome == "xpass":
            shown = f"{verdict}: XPASS (now identical: trim the list)"
        elif outcome == "skipped":
            shown = "skipped"
        counts[shown] = counts.get(shown, 0) + 1
        write(f"  {name:<{width}}  {shown}")
    write(f"  {len(VERDICTS)} cases: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
