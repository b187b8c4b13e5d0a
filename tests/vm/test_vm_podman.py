"""podman as the lingering user, with its default systemd cgroup manager: `run --memory`,
`update`, `pause`/`unpause` and `stats --no-stream`, with runc and with rootless as the
runtime. podman passes --systemd-cgroup to `create` only and the limits in config.json;
update sends `update --resources FILE` (tests/vm's runc cases show what rootless must match)."""

import os
import tempfile
import time
from pathlib import Path

import pytest

from vmlib import BOTH, COUNTER, Podman, counter, wait_until

MiB = 1024 * 1024


def running(podman: Podman, *args: str) -> str:
    """A detached busybox container of the module's image; its id."""
    result = podman("run", "--detach", "--network", "none", *args, check=True)
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("podman", BOTH, indirect=True)
def test_podman_run_memory_limit(podman: Podman) -> None:
    result = podman("run", "--rm", "--network", "none", "--memory", "64m", Podman.IMAGE,
                    "cat", "/sys/fs/cgroup/memory.max", check=True)
    assert result.stdout.strip() == str(64 * MiB)


@pytest.mark.parametrize("podman", BOTH, indirect=True)
def test_podman_update_changes_a_running_containers_limits(podman: Podman) -> None:
    name = running(podman, "--memory", "64m", "--cpus", "0.2", Podman.IMAGE, "sleep", "600")
    # podman 4.3's update has no --pids-limit; it sends `update --resources FILE`.
    podman("update", "--memory", "128m", "--cpus", "0.5", name, check=True)
    seen = podman("exec", name, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max", check=True)
    assert seen.stdout.splitlines() == [str(128 * MiB), "50000 100000"]


@pytest.mark.parametrize("podman", BOTH, indirect=True)
def test_podman_pause_and_unpause(podman: Podman) -> None:
    out = Path(tempfile.mkdtemp(prefix="out-", dir=podman.home))
    os.chmod(out, 0o777)
    name = running(podman, "--volume", f"{out}:/out", Podman.IMAGE, "sh", "-c", COUNTER)
    assert wait_until(lambda: counter(out) >= 2, timeout=60)
    podman("pause", name, check=True)
    assert podman.inspect(name, "{{.State.Status}}") == "paused"
    stopped_at = counter(out)
    time.sleep(2)
    assert counter(out) == stopped_at
    podman("unpause", name, check=True)
    assert podman.inspect(name, "{{.State.Status}}") == "running"
    assert wait_until(lambda: counter(out) > stopped_at + 2, timeout=60)


@pytest.mark.parametrize("podman", BOTH, indirect=True)
def test_podman_stats_no_stream(podman: Podman) -> None:
    name = running(podman, "--memory", "64m", "--pids-limit", "30", Podman.IMAGE, "sleep", "600")
    stats = podman.stats(name)
    # podman 4.3's JSON: mem_usage "USED / LIMIT" in human units (the limit is read from the
    # config), pids the count of the cgroup the container's init is in: its own scope holds
    # only `sleep` (conmon's scope, where a runtime without a cgroup leaves it, holds conmon too).
    assert stats["mem_usage"].split(" / ")[1] in ("67.11MB", "64MiB"), stats
    assert stats["pids"] in ("1", 1), stats
