"""Fault injection: the CLI, the namespace stage, the init and the network helper die at each
step of create, start and delete (ROOTLESS_FAULT=STEP makes the process SIGKILL itself there,
STEP=stop stops it), then `delete -f` must leave nothing. A child that dies during create is
reported by the CLI in one line that names it and how it died."""

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import leaks

from common import assert_one_line_error, helper_processes, helpers_present, tun_usable, wait_dead

CLI_CREATE = ("create:made", "create:forked", "create:mapped", "create:ready", "create:network", "create:saved")
CHILDREN = ("nsstage:waiting", "nsstage:userns", "nsstage:forked", "init:start", "init:mounted", "init:ready", "init:acked")
START = ("start:opened", "start:ready")
DELETE = ("delete:killed", "delete:detached", "delete:hooks")


def _network_flags(helper: str | None) -> list[str]:
    if helper is None:
        return []
    if not tun_usable() or not helpers_present()[helper]:
        pytest.skip(f"{helper} or a usable /dev/net/tun is missing")
    return ["--network", helper]


def _running(rt, helper):
    """A running container (with `helper` as its network helper): its bundle and id."""
    flags = _network_flags(helper)
    bundle = rt.bundle(["sleep", "1000"])
    container_id = rt.new_id("fault")
    assert rt.run("run", "-d", *flags, "--bundle", bundle, container_id).returncode == 0
    return bundle, container_id


def _assert_clean(rt, container_id, bundle, pids=()):
    result = rt.run("delete", "-f", container_id)
    assert result.returncode == 0, result.stderr
    assert not wait_dead(pids), f"still alive: {pids}"
    assert not helper_processes(str(rt.state_root)), "a network helper is left"
    # The watcher and the helper may take a moment after the init is gone.
    deadline = time.monotonic() + 5
    while True:
        try:
            rt.assert_no_leaks(container_id, bundle=bundle)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _init_pid(rt, container_id) -> int | None:
    try:
        return json.loads((rt.state_dir(container_id) / "state.json").read_text())["pid"]
    except (OSError, ValueError):
        return None


# The network helper starts after the namespace stage is gone: its steps run without one.
@pytest.mark.parametrize("step,helper", [(step, helper) for step in CLI_CREATE + CHILDREN for helper in (None, "pasta")
                                         if not (helper and step.startswith("nsstage"))])
def test_death_during_create(rootless_runtime, step, helper):
    rt = rootless_runtime
    flags = _network_flags(helper)
    bundle = rt.bundle(["sleep", "1000"])
    container_id = rt.new_id("fault")
    if step.startswith("init:"):
        result = _kill_init_at(rt, step, flags, bundle, container_id)
    else:
        result = rt.run("create", *flags, "--bundle", bundle, container_id, env={"ROOTLESS_FAULT": step})
    # Whoever is left of a killed CLI says nothing like BrokenPipeError on its stderr.
    assert "BrokenPipe" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if step.startswith("create:"):
        assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)
    elif step == "nsstage:forked":  # the stage's work is done: the init carries on
        assert result.returncode == 0, result.stderr
    elif step in ("init:ready", "init:acked"):
        # After "ready" the CLI may finish (the container is recorded, then stopped) or fail
        # at the next step (a network helper cannot join a namespace that is gone): one line.
        assert result.returncode == 0 or len(result.stderr.splitlines()) == 1, result.stderr
        assert "internal error" not in result.stderr and "BrokenPipe" not in result.stderr
    else:
        assert result.returncode == 1, result.stderr
        assert_one_line_error(result, step)
        what = "namespace stage" if step.startswith("nsstage") else "container init"
        assert f"the {what}" in result.stderr and "killed by signal 9" in result.stderr, result.stderr
        assert "BrokenPipe" not in result.stderr
    _assert_clean(rt, container_id, bundle, [p for p in [_init_pid(rt, container_id)] if p])


@pytest.mark.parametrize("step", ("create:ready", "create:saved"))
def test_stopped_cli_during_create(rootless_runtime, step):
    """A CLI stopped mid-create (as by a timed kill): delete -f while it is stopped, then it dies."""
    rt = rootless_runtime
    bundle = rt.bundle(["sleep", "1000"])
    container_id = rt.new_id("stop")
    proc = rt.popen("create", "--bundle", bundle, container_id, env={"ROOTLESS_FAULT": f"{step}=stop"},
                    stdout=None, stderr=None)
    deadline = time.monotonic() + 20
    stopped = None
    while stopped is None and time.monotonic() < deadline:
        for pid in _runtime_pids(proc.pid):
            if _state(pid) == "T":
                stopped = pid
        time.sleep(0.02)
    assert stopped, "the CLI never reached the step"
    init = _init_pid(rt, container_id)
    result = rt.run("delete", "-f", container_id)
    assert result.returncode == 0, result.stderr
    os.kill(stopped, signal.SIGKILL)
    proc.wait(timeout=10)
    _assert_clean(rt, container_id, bundle, [p for p in [init] if p])


def _kill_init_at(rt, step, flags, bundle, container_id):
    """The init (PID 1 of its namespace ignores its own signals) waits at `step`; kill it from here."""
    out, err = rt.work_dir / "create.out", rt.work_dir / "create.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:  # files: the init inherits them
        proc = rt.popen("create", *flags, "--bundle", bundle, container_id, env={"ROOTLESS_FAULT": f"{step}=stop"},
                        stdout=stdout, stderr=stderr)
    deadline = time.monotonic() + 10
    victim = None
    while victim is None and time.monotonic() < deadline:
        # Not below proc: the init is reparented when the namespace stage exits. It waits at
        # the step in a sleep (errors.fault), nowhere else.
        for pid, _ in leaks.processes_mentioning(container_id):
            if _ns_pid(pid) == 1 and _sleeping(pid):
                victim = pid
        time.sleep(0.02)
    assert victim is not None, f"the init never reached {step}: {err.read_text()}"
    os.kill(victim, signal.SIGKILL)
    proc.wait(timeout=15)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())


def _sleeping(pid: int) -> bool:
    try:
        return "nanosleep" in open(f"/proc/{pid}/wchan").read()
    except OSError:
        return False


def _ns_pid(pid: int) -> int | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


def _runtime_pids(root_pid: int) -> list[int]:
    """root_pid and its descendants (su or setpriv may sit between us and the runtime)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(fields[1]), []).append(int(name))
    found, queue = [], [root_pid]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += children.get(pid, [])
    return found


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


@pytest.mark.parametrize("step", START)
def test_death_during_start(rootless_runtime, step):
    rt = rootless_runtime
    bundle = rt.bundle(["sleep", "1000"])
    container_id = rt.new_id("fault")
    assert rt.run("create", "--bundle", bundle, container_id).returncode == 0
    init = rt.state(container_id)["pid"]
    result = rt.run("start", container_id, env={"ROOTLESS_FAULT": step})
    assert result.returncode == -signal.SIGKILL, result.stderr
    _assert_clean(rt, container_id, bundle, [init])


@pytest.mark.parametrize("helper", [None, "pasta", "slirp4netns"])
@pytest.mark.parametrize("step", DELETE)
def test_death_during_delete(rootless_runtime, step, helper):
    rt = rootless_runtime
    bundle, container_id = _running(rt, helper)
    init = rt.state(container_id)["pid"]
    result = rt.run("delete", "-f", container_id, env={"ROOTLESS_FAULT": step})
    assert result.returncode == -signal.SIGKILL, result.stderr
    _assert_clean(rt, container_id, bundle, [init])


@pytest.mark.parametrize("victim", ["helper_pid", "watcher_pid"])
@pytest.mark.parametrize("helper", ["pasta", "slirp4netns"])
def test_dead_network_helper_or_watcher(rootless_runtime, helper, victim):
    rt = rootless_runtime
    bundle, container_id = _running(rt, helper)
    record = json.loads((rt.state_dir(container_id) / "state.json").read_text())
    os.kill(record["network"][victim], signal.SIGKILL)
    assert not wait_dead([record["network"][victim]])
    result = rt.run("exec", container_id, "true")
    assert result.returncode == 0 or len(result.stderr.splitlines()) == 1, result.stderr
    _assert_clean(rt, container_id, bundle, [record["pid"], record["network"]["helper_pid"],
                                             record["network"]["watcher_pid"]])
