"""The cgroup verbs' own parsing: update's runc flags and values, events' --interval."""

import pytest

from rootless import cli
from rootless import args as a
from rootless.commands import events, update
from rootless.errors import UsageError


@pytest.mark.parametrize("text, value", [("67108864", 67108864), ("64m", 64 << 20), ("64M", 64 << 20),
                                         ("1g", 1 << 30), ("512k", 512 << 10), ("1.5g", 3 << 29), ("-1", -1),
                                         ("64mb", 64 << 20), ("64MiB", 64 << 20), ("0", 0)])
def test_memory_values_as_runc_reads_them(text: str, value: int) -> None:
    assert update.parse_bytes(text, "memory") == value


@pytest.mark.parametrize("text", ["lots", "64x", "-2", "", "m"])
def test_bad_memory_values(text: str) -> None:
    with pytest.raises(UsageError, match="--memory"):
        update.parse_bytes(text, "memory")


def test_update_flags_become_linux_resources() -> None:
    parsed = a.parse_command(cli.COMMANDS["update"], ["--memory", "64m", "--memory-swap=-1", "--cpu-shares", "512",
                                                      "--cpu-quota", "50000", "--cpu-period", "100000",
                                                      "--cpuset-cpus", "0-1", "--pids-limit", "-1",
                                                      "--blkio-weight", "300", "--memory-reservation", "32m", "ctr"])
    assert update.from_flags(parsed.options) == {
        "memory": {"limit": 64 << 20, "swap": -1, "reservation": 32 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"},
        "pids": {"limit": -1}, "blockIO": {"weight": 300}}
    runc_spelling = a.parse_command(cli.COMMANDS["update"], ["--cpu-share", "2", "c"])
    assert update.from_flags(runc_spelling.options) == {"cpu": {"shares": 2}}
    assert update.from_flags(a.parse_command(cli.COMMANDS["update"], ["c"]).options) == {}
    with pytest.raises(UsageError, match="Intel RDT"):
        update.from_flags(a.parse_command(cli.COMMANDS["update"], ["--l3-cache-schema", "L3:0=f", "c"]).options)
    with pytest.raises(UsageError, match="--pids-limit"):
        update.from_flags(a.parse_command(cli.COMMANDS["update"], ["--pids-limit", "many", "c"]).options)


def test_resources_file_as_podman_writes_it(tmp_path) -> None:
    path = tmp_path / "podman123"
    path.write_text('{"memory":{"limit":67108864,"swap":134217728},"cpu":{"shares":512}}')
    assert update.read_resources(str(path)) == {"memory": {"limit": 67108864, "swap": 134217728},
                                                "cpu": {"shares": 512}}
    with pytest.raises(UsageError, match="No such file"):
        update.read_resources(str(tmp_path / "none"))
    path.write_text("{")
    with pytest.raises(UsageError, match="not JSON"):
        update.read_resources(str(path))


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("100ms", 0.1), ("1m30s", 90), ("1.5s", 1.5), ("2h", 7200),
                                           ("250us", 0.00025)])
def test_intervals_as_go_writes_them(text: str, seconds: float) -> None:
    assert events.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "soon", "0s", "-1s", "5x"])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(UsageError):
        events.parse_duration(text)
