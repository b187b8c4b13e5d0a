"""OCI LinuxResources to cgroup v2 files (rootless.cgroups.resources): each field, and the edge
values -1 (no limit), 0 (not set, or a real 0 where the spec says so) and the largest ones.
Expected values are runc 1.1's (libcontainer/cgroups/fs2, cgroups/utils.go)."""

import pytest

from rootless.cgroups import resources as r
from rootless.errors import ConfigError


def files(res: dict) -> list[tuple[str, str]]:
    return [(w.file, w.value) for w in r.translate(res).writes]


@pytest.mark.parametrize("limit, expected", [
    (67108864, [("memory.max", "67108864")]),
    (-1, [("memory.swap.max", "max"), ("memory.max", "max")]),  # unlimited memory: unlimited swap too
    (0, []),                                                     # not set
    (2**63 - 1, [("memory.max", str(2**63 - 1))]),
])
def test_memory_limit(limit: int, expected: list) -> None:
    assert files({"memory": {"limit": limit}}) == expected


@pytest.mark.parametrize("limit, swap, expected", [
    (64 << 20, 128 << 20, [("memory.swap.max", str(64 << 20)), ("memory.max", str(64 << 20))]),
    (64 << 20, 64 << 20, [("memory.swap.max", "0"), ("memory.max", str(64 << 20))]),  # swap == limit: no swap
    (64 << 20, -1, [("memory.swap.max", "max"), ("memory.max", str(64 << 20))]),
    (64 << 20, 0, [("memory.max", str(64 << 20))]),
    (-1, -1, [("memory.swap.max", "max"), ("memory.max", "max")]),
])
def test_memory_swap_is_swap_minus_limit(limit: int, swap: int, expected: list) -> None:
    assert files({"memory": {"limit": limit, "swap": swap}}) == expected


def test_swap_needs_a_limit_at_least_the_memory_limit() -> None:
    with pytest.raises(ConfigError, match="needs a memory limit"):
        r.translate({"memory": {"swap": 100}})
    with pytest.raises(ConfigError, match="below memory.limit"):
        r.translate({"memory": {"limit": 200, "swap": 100}})
    with pytest.raises(ConfigError, match="needs a memory limit"):
        r.translate({"memory": {"limit": -1, "swap": 100}})


@pytest.mark.parametrize("value, expected", [(1 << 20, [("memory.low", "1048576")]), (-1, [("memory.low", "max")]),
                                             (0, [])])
def test_memory_reservation_is_memory_low(value: int, expected: list) -> None:
    assert files({"memory": {"reservation": value}}) == expected


def test_memory_fields_without_a_v2_file_are_named_not_dropped() -> None:
    t = r.translate({"memory": {"limit": 100, "kernel": 5, "kernelTCP": 5, "swappiness": 10,
                                "disableOOMKiller": True}})
    assert t.inapplicable == ["memory.kernel", "memory.kernelTCP", "memory.swappiness", "memory.disableOOMKiller"]
    assert t.names == ["memory.limit", "memory.kernel", "memory.kernelTCP", "memory.swappiness",
                       "memory.disableOOMKiller"]
    assert r.translate({"memory": {"disableOOMKiller": False}}).inapplicable == []


def test_a_limit_below_minus_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="memory.limit: -2"):
        r.translate({"memory": {"limit": -2}})
    with pytest.raises(ConfigError, match="not an integer"):
        r.translate({"memory": {"limit": "64m"}})


@pytest.mark.parametrize("limit, expected", [(100, "100"), (-1, "max"), (0, "0"), (-5, "max"), (2**31, str(2**31))])
def test_pids_limit(limit: int, expected: str) -> None:
    # The spec: 0 is a real limit (no new task), -1 none.
    assert files({"pids": {"limit": limit}}) == [("pids.max", expected)]
    assert r.translate({"pids": {"limit": limit}}).names == ["pids.limit"]


@pytest.mark.parametrize("shares, weight", [(2, 1), (1, 1), (1024, 39), (512, 20), (262144, 10000),
                                            (10**7, 10000), (100, 4)])
def test_cpu_shares_to_weight_is_crun_s_conversion(shares: int, weight: int) -> None:
    assert r.shares_to_weight(shares) == weight
    assert files({"cpu": {"shares": shares}}) == [("cpu.weight", str(weight))]


def test_cpu_shares_zero_is_not_set() -> None:
    assert files({"cpu": {"shares": 0}}) == []


@pytest.mark.parametrize("quota, period, expected", [
    (50000, 100000, "50000 100000"),
    (50000, 0, "50000"),        # the kernel keeps its period
    (-1, 100000, "max 100000"),
    (0, 100000, "max 100000"),  # runc: a period alone means no quota
    (-1, 0, "max"),
])
def test_cpu_quota_and_period_are_cpu_max(quota: int, period: int, expected: str) -> None:
    assert files({"cpu": {"quota": quota, "period": period}}) == [("cpu.max", expected)]


def test_cpu_quota_and_period_unset_write_nothing() -> None:
    assert files({"cpu": {"quota": 0, "period": 0}}) == []


def test_cpu_burst_idle_and_cpuset() -> None:
    assert files({"cpu": {"burst": 0, "idle": 1, "cpus": "0-1", "mems": "0"}}) == [
        ("cpu.max.burst", "0"), ("cpu.idle", "1"), ("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]
    assert files({"cpu": {"cpus": "", "mems": ""}}) == []
    t = r.translate({"cpu": {"realtimeRuntime": 950000, "realtimePeriod": 1000000}})
    assert t.writes == [] and t.inapplicable == ["cpu.realtimeRuntime", "cpu.realtimePeriod"]


@pytest.mark.parametrize("weight, io_weight", [(10, 1), (500, 4950), (1000, 10000), (100, 910)])
def test_blkio_weight_prefers_bfq_then_io_weight(weight: int, io_weight: int) -> None:
    (write,) = r.translate({"blockIO": {"weight": weight}}).writes
    assert (write.file, write.value, write.fallback) == ("io.bfq.weight", str(weight), ("io.weight", str(io_weight)))


def test_blkio_devices_and_throttles_are_io_max() -> None:
    res = {"blockIO": {"weight": 0, "leafWeight": 10,
                       "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 5}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                       "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                       "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 50}]}}
    t = r.translate(res)
    assert [(w.file, w.value) for w in t.writes] == [
        ("io.bfq.weight", "8:0 500"), ("io.max", "8:0 rbps=1048576"), ("io.max", "8:0 wbps=max"),
        ("io.max", "8:16 riops=100"), ("io.max", "8:16 wiops=50")]
    assert t.writes[0].fallback == ("io.weight", "8:0 4950")
    assert t.inapplicable == ["blockIO.leafWeight", "blockIO.weightDevice.leafWeight"]


def test_hugetlb_rdma_and_network() -> None:
    t = r.translate({"hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
                     "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1}},
                     "network": {"classID": 1048577}})
    assert [(w.file, w.value) for w in t.writes] == [
        ("hugetlb.2MB.max", "209715200"), ("hugetlb.1GB.max", "0"),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"), ("rdma.max", "mlx4_0 hca_handle=max hca_object=1")]
    assert t.inapplicable == ["network"]
    with pytest.raises(ConfigError, match="pageSize"):
        r.translate({"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]})


def test_unified_is_written_as_given_last_and_stays_in_the_container_s_cgroup() -> None:
    t = r.translate({"unified": {"memory.high": "1G", "io.max": "8:0 rbps=10"}, "pids": {"limit": 5}})
    assert [(w.file, w.value, w.names) for w in t.writes] == [
        ("pids.max", "5", ("pids.limit",)), ("memory.high", "1G", ("unified.memory.high",)),
        ("io.max", "8:0 rbps=10", ("unified.io.max",))]
    for bad in ("../memory.max", "sub/memory.max", ".hidden", "nodot", "cgroup.procs", "cgroup.subtree_control"):
        with pytest.raises(ConfigError):
            r.translate({"unified": {bad: "1"}})


def test_controllers_of_writes() -> None:
    t = r.translate({"memory": {"limit": 1}, "cpu": {"cpus": "0"}, "unified": {"cgroup.max.depth": "2"}})
    assert [w.controller for w in t.writes] == ["memory", "cpuset", None]


def test_devices_and_empty_sections_are_no_limits() -> None:
    t = r.translate({"devices": [{"allow": False, "access": "rwm"}], "memory": {}, "cpu": None})
    assert t.writes == [] and t.names == []
    assert r.translate(None).names == []


def test_merge_keeps_what_update_does_not_give() -> None:
    old = {"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 512}, "devices": []}
    merged = r.merge(old, {"memory": {"limit": 150}, "pids": {"limit": 10}})
    assert merged == {"memory": {"limit": 150, "swap": 200}, "cpu": {"shares": 512}, "devices": [],
                      "pids": {"limit": 10}}
    assert old["memory"] == {"limit": 100, "swap": 200}  # not modified in place
