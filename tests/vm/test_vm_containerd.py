"""rootless under a root containerd with systemd and cgroup v2, as on a Kubernetes node: the
runc shim with the CRI handler's options (packaging/containerd: BinaryName, SystemdCgroup),
`ctr task pause/resume` and `ctr task metrics`, and the shim's `kill --all` after the init of a
container in the host's PID namespace exits. containerd is the tests' own
(helpers.containerd), run as root through sudo; each case runs with runc too."""

import os
import time
import tomllib
from pathlib import Path

import pytest

from helpers.containerd import IMAGE, RUNTIME_TYPE, running_containerd
from helpers.runtime import RUNC, Runtime
from vmlib import BOTH, cgroup_of, keyed, read, wait_until

PACKAGING = Path(__file__).resolve().parents[2] / "packaging" / "containerd"


@pytest.fixture(scope="module")
def containerd(scratch_root, busybox_rootfs):
    yield from running_containerd(scratch_root, busybox_rootfs, as_root=("sudo", "-n"), timeout=300)


@pytest.fixture(params=BOTH)
def handler(request, containerd, rootless_bin):
    """(containerd, the `ctr run` flags of the packaged CRI handler for this runtime: its
    runtime_type, BinaryName (the installed rootless, or runc) and SystemdCgroup)."""
    with open(PACKAGING / "rootless-runtime.toml", "rb") as f:
        runtime = tomllib.load(f)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["rootless"]
    assert runtime["runtime_type"] == RUNTIME_TYPE
    flags = containerd.runtime_flags(rootless_bin if request.param == "rootless" else RUNC,
                                     systemd_cgroup=runtime["options"]["SystemdCgroup"])
    yield containerd, flags
    containerd.remove_all()


def _run(containerd, flags, *args: str) -> tuple[str, int]:
    """A detached task (its cgroup as the CRI plugin names a systemd one: SLICE:PREFIX:ID);
    returns its id and init PID."""
    task = Runtime.new_id("ctr")
    cgroup = ["--cgroup", f"system.slice:ctr:{task}"] if "--runc-systemd-cgroup" in flags else []
    result = containerd.ctr("run", "-d", *flags, *cgroup, IMAGE, task, *args, timeout=300)
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: containerd.status(task) == "RUNNING", timeout=120)
    return task, containerd.tasks()[task][0]


def test_handler_options_put_the_task_in_a_systemd_scope(handler):
    containerd, flags = handler
    task, pid = _run(containerd, flags, "sleep", "600")
    assert cgroup_of(pid) == Path(f"/sys/fs/cgroup/system.slice/ctr-{task}.scope")
    assert containerd.ctr("task", "kill", "-s", "KILL", task).returncode == 0
    assert wait_until(lambda: containerd.status(task) == "STOPPED", timeout=120)
    assert containerd.ctr("task", "delete", task).returncode == 0
    assert wait_until(lambda: not Path(f"/sys/fs/cgroup/system.slice/ctr-{task}.scope").exists(), timeout=60)


def test_pause_and_resume_freeze_the_cgroup(handler):
    containerd, flags = handler
    task, pid = _run(containerd, flags, "sh", "-c", "while :; do sleep 0.1; done")
    cgroup = cgroup_of(pid)
    assert containerd.ctr("task", "pause", task, timeout=120).returncode == 0
    assert containerd.status(task) == "PAUSED"
    assert keyed(cgroup / "cgroup.events")["frozen"] == 1
    assert containerd.ctr("task", "resume", task, timeout=120).returncode == 0
    assert containerd.status(task) == "RUNNING"
    assert keyed(cgroup / "cgroup.events")["frozen"] == 0


def test_metrics_read_the_tasks_cgroup(handler):
    containerd, flags = handler
    # busybox's sh execs a last simple command: `wait` keeps the shell, so there are three.
    task, pid = _run(containerd, flags, "sh", "-c", "sleep 600 & sleep 600 & wait")
    assert wait_until(lambda: int(read(cgroup_of(pid) / "pids.current")) == 3, timeout=60)
    shown = containerd.ctr("task", "metrics", task, timeout=120)
    assert shown.returncode == 0, shown.stderr
    rows = dict(line.split() for line in shown.stdout.splitlines() if len(line.split()) == 2)  # ctr pads columns
    assert rows.get("pids.current") == "3", shown.stdout
    assert int(rows.get("memory.usage_in_bytes", rows.get("memory.usage", "0"))) > 0, shown.stdout


def test_kill_all_after_exit_reaches_what_the_init_left(handler):
    """Without a PID namespace of its own, the init's children outlive it; the shim then sends
    `kill --all ID 9`, and the runtime finds them in the container's cgroup."""
    containerd, flags = handler
    marker = "7%d" % (time.time_ns() % 100000)
    task, pid = _run(containerd, ["--with-ns", "pid:/proc/1/ns/pid", *flags],
                     "sh", "-c", f"sleep {marker} & sleep 30; exit 0")  # 30 s: time to read its cgroup under TCG
    cgroup = cgroup_of(pid)
    assert wait_until(lambda: containerd.status(task) == "STOPPED", timeout=120)

    def left() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                    found.append(int(entry))
            except OSError:
                continue
        return found

    assert wait_until(lambda: not left(), timeout=60), (left(), containerd.log())
    assert containerd.ctr("task", "delete", task).returncode == 0
    assert wait_until(lambda: not cgroup.exists(), timeout=60)
