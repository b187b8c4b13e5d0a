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
    pause_and_unpause(podman)


def pause_and_unpause(podman: Podman) -> None:
    """A counting container stops counting while paused and goes on once unpaused."""
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
    stats_no_stream(podman)


def stats_no_stream(podman: Podman) -> None:
    name = running(podman, "--memory", "64m", "--pids-limit", "30", Podman.IMAGE, "sleep", "600")
    stats = podman.stats(name)
    # podman 4.3's JSON: mem_usage "USED / LIMIT" in human units (the limit is read from the
    # config), pids the count of the cgroup the container's init is in: its own scope holds
    # only `sleep` (conmon's scope, where a runtime without a cgroup leaves it, holds conmon too).
    assert stats["mem_usage"].split(" / ")[1] in ("67.11MB", "64MiB"), stats
    assert stats["pids"] in ("1", 1), stats


# podman as root (run-tier's second pass), its cgroups through systemd, each case with runc and
# with rootless in the same VM. The host cannot run these: runc as root there always makes a
# v1 memory cgroup, which the host forbids.

def full_capabilities() -> str:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return f"{(1 << (last + 1)) - 1:016x}"


@pytest.mark.vmroot
@pytest.mark.parametrize("root_podman", BOTH, indirect=True)
def test_root_podman_memory_limit_and_update(root_podman: Podman) -> None:
    name = running(root_podman, "--memory", "64m", Podman.IMAGE, "sleep", "600")
    seen = root_podman("exec", name, "cat", "/sys/fs/cgroup/memory.max", check=True)
    assert seen.stdout.strip() == str(64 * MiB)
    root_podman("update", "--memory", "128m", "--cpus", "0.5", name, check=True)
    seen = root_podman("exec", name, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max", check=True)
    assert seen.stdout.splitlines() == [str(128 * MiB), "50000 100000"]
    # The limit holds: tail, which keeps all of a file without newlines, is killed past it.
    hog = root_podman("run", "--rm", "--network", "none", "--memory", "32m", "--memory-swap", "32m", Podman.IMAGE,
                      "sh", "-c", "head -c 100m /dev/zero | tail > /dev/null; echo $?")
    assert hog.stdout == "137\n", (hog.stdout, hog.stderr)


@pytest.mark.vmroot
@pytest.mark.parametrize("root_podman", BOTH, indirect=True)
def test_root_podman_pause_and_unpause(root_podman: Podman) -> None:
    pause_and_unpause(root_podman)


@pytest.mark.vmroot
@pytest.mark.parametrize("root_podman", BOTH, indirect=True)
def test_root_podman_stats_no_stream(root_podman: Podman) -> None:
    stats_no_stream(root_podman)


@pytest.mark.vmroot
@pytest.mark.parametrize("root_podman", BOTH, indirect=True)
def test_root_podman_device(root_podman: Podman) -> None:
    """Root podman creates the node (fileMode with the type bits, 8630) and allows it in the
    device cgroup (an eBPF program on cgroup v2)."""
    out = root_podman("run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull", Podman.IMAGE,
                      "sh", "-c", "stat -c '%t:%T %a %u' /dev/xnull; echo x > /dev/xnull && echo written; "
                      "mknod /tmp/kmsg c 1 11 && { head -c 1 /tmp/kmsg >/dev/null 2>&1 || echo open-refused; }",
                      check=True).stdout
    # mknod is allowed for any device (c *:* m), opening one not listed is not.
    assert out == "1:3 666 0\nwritten\nopen-refused\n", out


@pytest.mark.vmroot
@pytest.mark.parametrize("root_podman", BOTH, indirect=True)
def test_root_podman_privileged(root_podman: Podman) -> None:
    out = root_podman("run", "--rm", "--network", "none", "--privileged", Podman.IMAGE, "sh", "-c",
                      "grep -E '^Cap(Eff|Bnd)' /proc/self/status | cut -f2; stat -c '%t:%T' /dev/kmsg; "
                      "mount -t tmpfs tmpfs /tmp && echo mounted", check=True).stdout.split()
    assert out == [full_capabilities()] * 2 + ["1:b", "mounted"], out


@pytest.mark.vmroot
@pytest.mark.parametrize("root_podman", BOTH, indirect=True)
def test_root_podman_idmapped_volume(root_podman: Podman) -> None:
    """-v DIR:DST:idmap with --uidmap: the container's own maps idmap the volume (current runc),
    so a file root owns on disk is the container's root. runc 1.1.5 ignores the option: the
    file is unmapped there, nobody (docs/differences-from-runc.md)."""
    vol = Path(tempfile.mkdtemp(prefix="idmap-", dir=root_podman.home))
    os.chmod(vol, 0o755)  # mkdtemp's 0700 would keep an unmapped root (runc 1.1.5's) out
    (vol / "f").write_text("x")
    maps = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]
    out = root_podman("run", "--rm", "--network", "none", *maps, "-v", f"{vol}:/v:idmap", Podman.IMAGE,
                      "stat", "-c", "%u:%g", "/v/f", check=True).stdout.strip()
    assert out == ("65534:65534" if root_podman.runtime_bin.endswith("runc") else "0:0"), out
