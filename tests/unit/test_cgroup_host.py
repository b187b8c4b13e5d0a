"""Where a container's cgroup goes and how systemd is reached (rootless.cgroups.cgpath, host,
sdprops): runc's `slice:prefix:name`, its cgroupfs paths, the D-Bus address and the UID the bus
must see, and the unit properties."""

import pytest

from rootless.cgroups import cgpath, host, sdprops
from rootless.cgroups.resources import MAX_UINT64, translate
from rootless.errors import ConfigError


@pytest.mark.parametrize("path, rootless, expected", [
    ("user.slice:libpod:abc", True, ("user.slice", "libpod-abc.scope")),
    ("system.slice:crio:abc", False, ("system.slice", "crio-abc.scope")),
    (":libpod:abc", True, ("user.slice", "libpod-abc.scope")),     # empty slice: runc's default
    (":libpod:abc", False, ("system.slice", "libpod-abc.scope")),
    ("machine.slice::abc", False, ("machine.slice", "abc.scope")),  # no prefix
    ("", True, ("user.slice", "runc-ID.scope")),                    # empty: runc's defaults
    ("", False, ("system.slice", "runc-ID.scope")),
])
def test_systemd_cgroups_path(path: str, rootless: bool, expected: tuple) -> None:
    assert cgpath.systemd_unit(path, "ID", rootless) == expected


@pytest.mark.parametrize("path, said", [
    ("/user.slice/libpod-abc", "slice:prefix:name"), ("a:b", "slice:prefix:name"), ("a:b:c:d", "slice:prefix:name"),
    ("user.slice:libpod:", "name"), ("user:libpod:x", "not a slice"), ("user.slice:p:x.slice", "slice of its own"),
])
def test_systemd_cgroups_path_refused(path: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        cgpath.systemd_unit(path, "ID", True)


def test_expand_slice() -> None:
    assert cgpath.expand_slice("user-1000.slice") == "/user.slice/user-1000.slice"
    assert cgpath.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert cgpath.expand_slice("system.slice") == "/system.slice"
    assert cgpath.expand_slice("-.slice") == "/"
    for bad in ("-a.slice", "a--b.slice", "a-.slice"):
        with pytest.raises(ConfigError):
            cgpath.expand_slice(bad)


def test_own_cgroup_is_the_unified_line() -> None:
    hybrid = "12:memory:/x\n1:name=systemd:/init.scope\n0::/init.scope\n"
    assert cgpath.own_cgroup(hybrid) == "/init.scope"
    assert cgpath.own_cgroup("0::/\n") == "/"
    assert cgpath.own_cgroup("4:pids:/a\n") is None


@pytest.mark.parametrize("cgroups_path, own, expected", [
    ("", "/user.slice/user-1000.slice/user@1000.service/app.slice/run-u1.scope",
     "/user.slice/user-1000.slice/user@1000.service/app.slice/ID"),  # a .scope holds processes: beside it
    ("", "/user.slice/user-1000.slice/user@1000.service/app.slice", 
     "/user.slice/user-1000.slice/user@1000.service/app.slice/ID"),
    ("ctr/one", "/delegated", "/delegated/ctr/one"),
    ("../../escape", "/delegated/x.scope", "/delegated/escape"),   # runc's CleanPath: no climbing out
    ("/machine/ctr", "/whatever.scope", "/machine/ctr"),
    ("/a/../b//c/", "/", "/b/c"),
])
def test_cgroupfs_path(cgroups_path: str, own: str, expected: str) -> None:
    assert cgpath.cgroupfs_path(cgroups_path, "ID", own) == expected


def test_cgroupfs_path_never_the_root() -> None:
    with pytest.raises(ConfigError, match="root cgroup"):
        cgpath.cgroupfs_path("/", "ID", "/")


def test_host_uid_behind_podman_s_user_namespace() -> None:
    podman = "         0       1000          1\n         1     100000      65536\n"
    assert host.host_uid(0, podman) == 1000
    assert host.host_uid(5, podman) == 100004
    assert host.host_uid(1000, "0 0 4294967295\n") == 1000  # the initial namespace
    assert host.host_uid(7, "") == 7


def test_bus_address_as_runc_finds_it(tmp_path) -> None:
    (tmp_path / "bus").touch()
    assert host.bus_address(False, {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x", "XDG_RUNTIME_DIR": str(tmp_path)}) \
        == "unix:path=/x"
    assert host.bus_address(False, {"XDG_RUNTIME_DIR": str(tmp_path)}) == f"unix:path={tmp_path}/bus"
    assert host.bus_address(False, {"XDG_RUNTIME_DIR": str(tmp_path / "none")}) is None
    assert host.bus_address(False, {}) is None
    assert host.bus_address(True, {"XDG_RUNTIME_DIR": str(tmp_path)}) == "unix:path=/run/dbus/system_bus_socket"
    assert host.bus_address(True, {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/s"}) == "unix:path=/s"


def test_socket_address() -> None:
    assert host.socket_address("unix:path=/run/user/1000/bus") == "/run/user/1000/bus"
    assert host.socket_address("unix:path=/tmp/a%20b,guid=123") == "/tmp/a b"
    assert host.socket_address("tcp:host=x,port=1;unix:abstract=/tmp/dbus-X") == b"\0/tmp/dbus-X"
    with pytest.raises(ValueError):
        host.socket_address("tcp:host=localhost,port=5")


def test_unified_and_delegated_read_the_tree(tmp_path) -> None:
    assert not host.unified(str(tmp_path))
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert host.unified(str(tmp_path))
    assert host.controllers(str(tmp_path)) == ["cpu", "memory", "pids"]
    (tmp_path / "a").mkdir()
    assert host.nearest_existing(str(tmp_path), "/a/b/c") == str(tmp_path / "a")
    assert not host.delegated(str(tmp_path / "a"))  # no cgroup.procs to write
    (tmp_path / "a" / "cgroup.procs").touch()
    assert host.delegated(str(tmp_path / "a"))


def test_unit_properties_follow_runc() -> None:
    writes = translate({"memory": {"limit": 64 << 20, "swap": -1, "reservation": 1 << 20}, "pids": {"limit": -1},
                        "cpu": {"shares": 1024, "quota": 12345, "period": 100000, "cpus": "0-2,9", "mems": "0"}}).writes
    assert dict(sdprops.for_writes(writes)) == {
        "MemorySwapMax": ("t", MAX_UINT64), "MemoryMax": ("t", 64 << 20), "MemoryLow": ("t", 1 << 20),
        "TasksMax": ("t", MAX_UINT64), "CPUWeight": ("t", 39), "CPUQuotaPeriodUSec": ("t", 100000),
        "CPUQuotaPerSecUSec": ("t", 130000),  # 123450 per second, rounded up to 10 ms
        "AllowedCPUs": ("ay", bytes([0b111, 0b10])), "AllowedMemoryNodes": ("ay", b"\x01")}
    assert dict(sdprops.for_writes(translate({"cpu": {"quota": -1}}).writes)) == {
        "CPUQuotaPerSecUSec": ("t", MAX_UINT64)}
    base = dict(sdprops.base("ID", "user.slice", 42))
    assert base["PIDs"] == ("au", [42]) and base["Delegate"] == ("b", True)
    assert base["DefaultDependencies"] == ("b", False) and base["Slice"] == ("s", "user.slice")


@pytest.mark.parametrize("text, expected", [
    ("uint64 1000", ("t", 1000)), ("true", ("b", True)), ("'inactive-or-failed'", ("s", "inactive-or-failed")),
    ('"x"', ("s", "x")), ("5", ("i", 5)), ("1.5", ("d", 1.5)), ("uint32 7", ("u", 7)),
    ("boolean false", ("b", False)), ("['a', 'b']", ("as", ["a", "b"])), ("double 2", ("d", 2.0)),
])
def test_annotation_values_are_gvariant_text(text: str, expected: tuple) -> None:
    assert sdprops.parse_variant(text) == expected


def test_systemd_property_annotations_pass_through() -> None:
    props = sdprops.from_annotations({"org.systemd.property.CollectMode": "'inactive-or-failed'",
                                      "org.systemd.property.TimeoutStopSec": "uint64 3",
                                      "org.systemd.property.RuntimeMaxUSec": "uint64 5000000",
                                      "org.example.other": "x"})
    assert props == [("CollectMode", ("s", "inactive-or-failed")), ("TimeoutStopUSec", ("t", 3_000_000)),
                     ("RuntimeMaxUSec", ("t", 5_000_000))]
    for key, value in (("org.systemd.property.bad-name", "1"), ("org.systemd.property.X", "not a value"),
                       ("org.systemd.property.TimeoutStopSec", "'soon'")):
        with pytest.raises(ConfigError):
            sdprops.from_annotations({key: value})
