"""What the systemd driver adds to `create`, measured in the VM beside runc (issue 11's note):
for each runtime, `create` of the same container with the systemd driver (a transient scope
over D-Bus, a pids limit) and without a cgroup of its own (rootless: --cgroup-manager
disabled; runc: no --systemd-cgroup and no limits, its rootless cgroupfs manager then makes
nothing it may not), VMTIER_BENCH_ROUNDS times each, interleaved; the medians are printed:

    tests/vm/run -k bench -s        (VMTIER_BENCH_ROUNDS=N for more rounds; default 1, to keep the tier short)

Process creation under TCG is 50-90 times slower than on a host: the absolute numbers are the
VM's, the difference between the two columns is what the driver costs."""

import os
import statistics
import time

import pytest

from vmlib import VmRuntime

ROUNDS = int(os.environ.get("VMTIER_BENCH_ROUNDS", "1"))


def _create_seconds(vm_runtime: VmRuntime, systemd: bool) -> float:
    container_id = vm_runtime.new_id()
    resources = {"pids": {"limit": 100}} if systemd else None
    bundle = vm_runtime.bundle(["sleep", "600"], container_id, resources=resources, systemd=systemd)
    flags = () if systemd or vm_runtime.name == "runc" else ("--cgroup-manager", "disabled")
    started = time.monotonic()
    vm_runtime.run(*flags, "create", "--bundle", str(bundle), container_id, systemd=systemd)
    took = time.monotonic() - started
    vm_runtime.run("delete", "--force", container_id, systemd=systemd)
    return took


@pytest.mark.parametrize("vm_runtime", ["runc", "rootless"], indirect=True)
def test_bench_create_with_and_without_the_systemd_driver(vm_runtime: VmRuntime) -> None:
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(ROUNDS):
        for systemd in (True, False):
            timings[systemd].append(_create_seconds(vm_runtime, systemd))
    with_driver, without = statistics.median(timings[True]), statistics.median(timings[False])
    print(f"\nbench: {vm_runtime.name:8} create, median of {ROUNDS}: systemd driver {with_driver * 1000:.0f} ms, "
          f"no cgroup {without * 1000:.0f} ms, the driver adds {(with_driver - without) * 1000:.0f} ms")
    assert len(timings[True]) == len(timings[False]) == ROUNDS
