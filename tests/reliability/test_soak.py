"""A soak: RELIABILITY_LIFECYCLES lifecycles (run -d, exec, kill, delete), every third with a
network helper (pasta or slirp4netns in turn, where the host has them), then every leak
counter: live processes of this test (not zombies), fds (the container's init holds its stdio
only; the test process holds what it held), host mounts, state directories, helpers, and
cgroups (helpers.leaks.CgroupCounter): on a host that delegates none, as this build host, that
counter checks nothing and the test says so in a warning rather than passing on it silently
(tests/vm/test_vm_soak.py runs the same soak where cgroups exist)."""

import os
import random
import warnings

from common import (fd_count, helper_processes, helpers_present, knob, live_processes_of, mount_count,
                    tun_usable, wait_dead)
from helpers.leaks import CgroupCounter

LIFECYCLES = knob("RELIABILITY_LIFECYCLES", 24)


def test_soak_leaves_nothing(rootless_runtime):
    rt = rootless_runtime
    present = [name for name, found in helpers_present().items() if found] if tun_usable() else []
    token = str(random.randrange(10**6, 10**7))  # names this test's containers' processes
    bundle = rt.bundle(["sleep", token])
    uid = rt.user.uid
    needles = (token, str(rt.state_root), str(rt.work_dir))

    def ours() -> set[int]:
        """The test user's processes that belong to this test (others run beside it)."""
        return {pid for pid, cmd in live_processes_of(uid) if any(n in cmd for n in needles)}

    own_fds = fd_count([os.getpid()])
    before_mounts = mount_count()
    inits, networked = [], 0
    cgroups = CgroupCounter()
    for number in range(LIFECYCLES):
        container_id = rt.new_id("soak")
        flags = []
        if present and number % 3 == 2:
            flags = ["--network", present[networked % len(present)]]
            networked += 1
        result = rt.run("run", "-d", *flags, "--bundle", bundle, container_id)
        assert result.returncode == 0, result.stderr
        state = rt.state(container_id)
        inits.append(state["pid"])
        cgroups.note(container_id, state["pid"])
        # fds: the container's process holds its stdio and nothing of the runtime's.
        result = rt.run("exec", container_id, "ls", "/proc/1/fd")
        assert result.returncode == 0 and result.stdout.split() == ["0", "1", "2"], (result.stdout, result.stderr)
        assert rt.run("kill", container_id, "KILL").returncode == 0
        assert rt.wait_for_status(container_id, "stopped")["status"] == "stopped"
        result = rt.run("delete", container_id)
        assert result.returncode == 0, result.stderr
        rt.assert_no_leaks(container_id, bundle=bundle)
    assert not wait_dead(inits)
    assert not list(rt.state_root.iterdir()), "state directories left"
    assert not ours(), f"processes left: {ours()}"
    assert fd_count([os.getpid()]) == own_fds, "fds leaked into the test process"
    assert mount_count() == before_mounts, "host mounts changed"
    assert not helper_processes(str(rt.state_root)), "network helpers left"
    assert not cgroups.left(), f"cgroups left: {cgroups.left()}"
    print(f"soak: {LIFECYCLES} lifecycles, {networked} with a network helper; {cgroups.summary()}")
    if not cgroups.checked:
        warnings.warn(f"soak: {cgroups.summary()}")
