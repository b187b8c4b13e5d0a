"""The pure parts of rootless.process.attrs and the mount extensions: what config.json asks for,
checked and converted without privileges."""

import os

import pytest

from rootless.oci import mounts
from rootless.rootfs import mountext
from rootless.process import attrs
from rootless.errors import ConfigError


def ns(*types: str) -> dict:
    return {t: None for t in types}


@pytest.mark.parametrize("key, needed", [("kernel.shmmax", "ipc"), ("kernel/sem", "ipc"), ("fs.mqueue.msg_max", "ipc"),
                                         ("net.ipv4.ip_forward", "network"), ("kernel.domainname", "uts")])
def test_namespaced_sysctls_need_their_namespace(key, needed):
    attrs.check_sysctls({key: "1"}, ns(needed))
    with pytest.raises(ConfigError, match=f"needs a {needed} namespace"):
        attrs.check_sysctls({key: "1"}, ns("mount"))


@pytest.mark.parametrize("key", ["vm.swappiness", "kernel.panic", "fs.file-max", "kernel.shmmaxx"])
def test_host_sysctls_are_refused(key):
    with pytest.raises(ConfigError, match=f'"{key}" is not namespaced'):
        attrs.check_sysctls({key: "1"}, ns("ipc", "network", "uts"))


def test_personality():
    assert attrs.personality_value({"domain": "LINUX32"}) == 8
    assert attrs.personality_value({"domain": "LINUX"}) == 0
    # flags: runc and crun ignore them (rootless.oci.config warns, as current runc does)
    assert attrs.personality_value({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}) == 0


def test_scheduler_args():
    args = attrs.scheduler_args({"policy": "SCHED_FIFO", "priority": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]})
    assert args == {"policy": 1, "flags": 1, "nice": 0, "priority": 5, "runtime": 0, "deadline": 0, "period": 0}
    assert attrs.scheduler_args({"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3})["policy"] == 6


@pytest.mark.parametrize("scheduler, needle", [
    ({"policy": "SCHED_ISO"}, "SCHED_ISO"), ({"policy": "SCHED_OTHER", "nice": 20}, "nice"),
    ({"policy": "SCHED_RR"}, "priority"), ({"policy": "SCHED_OTHER", "priority": 3}, "priority"),
    ({"policy": "SCHED_DEADLINE", "runtime": 5, "deadline": 2}, "SCHED_DEADLINE"),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_UTIL_CLAMP_MIN"]}, "UTIL_CLAMP_MIN")])
def test_bad_scheduler(scheduler, needle):
    with pytest.raises(ConfigError, match=needle):
        attrs.scheduler_args(scheduler)


def test_ioprio():
    assert attrs.ioprio_value({"class": "IOPRIO_CLASS_BE", "priority": 4}) == (2 << 13) | 4
    with pytest.raises(ConfigError, match="0..7"):
        attrs.ioprio_value({"class": "IOPRIO_CLASS_IDLE", "priority": 8})


def test_time_offsets():
    text = attrs.time_offsets_text({"monotonic": {"secs": -5}, "boottime": {"secs": 7, "nanosecs": 9}})
    assert text == "monotonic -5 0\nboottime 7 9\n"
    with pytest.raises(ConfigError, match="realtime"):
        attrs.time_offsets_text({"realtime": {"secs": 1}})


def test_time_offsets_need_a_new_time_namespace():
    config = {"linux": {"namespaces": [{"type": "mount"}], "timeOffsets": {"monotonic": {"secs": 1}}}}
    with pytest.raises(ConfigError, match="needs a time namespace"):
        attrs.check(config)
    config["linux"]["namespaces"].append({"type": "time", "path": "/proc/1/ns/time"})
    with pytest.raises(ConfigError, match="joined by path"):
        attrs.check(config)


def test_lsm_errors_name_the_missing_lsm():
    with pytest.raises(ConfigError, match="AppArmor is not enabled"):
        attrs.check_lsm({"process": {"apparmorProfile": "p"}}, apparmor=False, selinux=True)
    with pytest.raises(ConfigError, match="linux.mountLabel .* SELinux is not enabled"):
        attrs.check_lsm({"linux": {"mountLabel": "l"}}, apparmor=True, selinux=False)
    attrs.check_lsm({"process": {"apparmorProfile": "p", "selinuxLabel": "l"}}, apparmor=True, selinux=True)


def test_apparmor_detection(tmp_path):
    flag = tmp_path / "enabled"
    flag.write_text("Y\n")
    assert attrs.apparmor_enabled(str(flag))
    flag.write_text("N\n")
    assert not attrs.apparmor_enabled(str(flag))
    assert not attrs.apparmor_enabled(str(tmp_path / "missing"))


def test_mount_extensions_in_the_plan():
    op = mounts.plan_mount({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup", "mode=755"]}, "/b")
    assert op.copy_up and op.data == "mode=755" and "tmpcopyup" in op.describe()
    m = [{"containerID": 0, "hostID": 1000, "size": 1}]
    op = mounts.plan_mount({"destination": "/d", "type": "bind", "source": "/s", "options": ["rbind", "ridmap"],
                            "uidMappings": m, "gidMappings": m}, "/b")
    assert op.idmap == (m, m, True) and op.data == ""
    with pytest.raises(ConfigError, match="both uidMappings and gidMappings"):
        mounts.plan_mount({"destination": "/d", "type": "bind", "source": "/s", "options": ["bind", "idmap"],
                           "uidMappings": m}, "/b")


def test_mount_label_goes_to_filesystem_mounts_only():
    plan = mounts.plan_rootfs({"mounts": [{"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
                                          {"destination": "/b", "type": "bind", "source": "/s", "options": ["bind"]}],
                               "linux": {"mountLabel": "system_u:object_r:c:s0"}}, "/b")
    assert plan[0].data == 'mode=1777,context="system_u:object_r:c:s0"' and plan[1].data == ""


def test_copy_tree(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    dst.mkdir()
    (src / "d" / "f").write_text("hello")
    os.chmod(src / "d" / "f", 0o640)
    os.symlink("d/f", src / "link")
    os.mkfifo(src / "fifo")
    s, d = os.open(src, os.O_RDONLY | os.O_DIRECTORY), os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mountext.copy_tree(s, d, "/x")
    finally:
        os.close(s)
        os.close(d)
    assert (dst / "d" / "f").read_text() == "hello" and (dst / "d" / "f").stat().st_mode & 0o777 == 0o640
    assert os.readlink(dst / "link") == "d/f" and (dst / "fifo").is_fifo()
    assert (dst / "d" / "f").stat().st_mtime_ns == (src / "d" / "f").stat().st_mtime_ns


def test_map_text():
    assert mountext.map_text([{"containerID": 0, "hostID": 1000, "size": 1},
                              {"containerID": 1, "hostID": 100000, "size": 65536}]) == "0 1000 1\n1 100000 65536\n"


@pytest.mark.parametrize("text, ids", [("0-3,7", [0, 1, 2, 3, 7]), ("", []), ("5", [5]), ("1,1,0", [0, 1]),
                                       (" 2 - 3 ", [2, 3])])
def test_id_lists(text, ids):
    assert attrs.id_list(text, "x") == ids


@pytest.mark.parametrize("text", ["a", "1-", "-1", "3-1", "0-70000", "1;2"])
def test_bad_id_lists(text):
    with pytest.raises(ConfigError, match="config.json: process.execCPUAffinity.initial"):
        attrs.cpu_affinity({"execCPUAffinity": {"initial": text}})


def test_memory_policy_args():
    assert attrs.memory_policy_args({"mode": "MPOL_INTERLEAVE", "nodes": "2-3", "flags": ["MPOL_F_STATIC_NODES"]}) \
        == (3 | 1 << 15, [2, 3])
    assert attrs.memory_policy_args({"mode": "MPOL_LOCAL"}) == (4, [])
    assert attrs.memory_policy_args({"mode": "MPOL_PREFERRED"}) == (1, [])        # preferred: the local node
    for policy, needle in (({"mode": "MPOL_FOO"}, "is not a memory policy mode"),
                           ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_X"]}, "is not a memory policy flag"),
                           ({"mode": "MPOL_WEIGHTED_INTERLEAVE"}, "needs nodes"),
                           ({"mode": "MPOL_DEFAULT", "nodes": "0"}, "takes no nodes")):
        with pytest.raises(ConfigError, match=needle):
            attrs.check({"linux": {"memoryPolicy": policy}, "process": {}})


def test_cpu_affinity():
    assert attrs.cpu_affinity({}) == (None, None)
    assert attrs.cpu_affinity({"execCPUAffinity": {"initial": "0-1", "final": ""}}) == ([0, 1], None)
    assert attrs.cpu_affinity({"execCPUAffinity": {"final": "1"}}) == (None, [1])


def test_home_of(tmp_path):
    from rootless.process import become
    passwd = tmp_path / "passwd"
    passwd.write_bytes(b"root:x:0:0:root:/root:/bin/sh\n\n# a comment\nweird:x:7:7::/h\xe9:/bin/sh\n"
                       b"short:x:8\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    assert become.home_of(0, str(passwd)) == "/root"
    assert become.home_of(65534, str(passwd)) == "/nonexistent"
    assert become.home_of(7, str(passwd)).encode(errors="surrogateescape") == b"/h\xe9"
    assert become.home_of(8, str(passwd)) == "/"          # too few fields
    assert become.home_of(1234, str(passwd)) == "/"
    assert become.home_of(0, str(tmp_path / "missing")) == "/"


def test_capabilities_are_named_as_linux_names_them():
    """linux/capability.h's numbers up to the kernel's last; python-prctl's flag names
    (CAP_EFFECTIVE is 0) and CAP_LAST_CAP are no capabilities."""
    from rootless.process import become
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert become.kernel_last_cap() == int(f.read())
    warnings: list[str] = []
    names = ["CAP_CHECKPOINT_RESTORE", "CAP_EFFECTIVE", "CAP_LAST_CAP", "cap_kill", "CAP_BPF"]
    assert become.capability_numbers(names, "bounding", warnings.append, last=40) == [40, 5, 39]
    assert become.capability_numbers(names, "bounding", warnings.append, last=39) == [5, 39]
    unknown = [w.partition("unknown capability ")[2].partition(",")[0] for w in warnings]
    assert unknown == ["CAP_EFFECTIVE", "CAP_LAST_CAP", "CAP_CHECKPOINT_RESTORE", "CAP_EFFECTIVE", "CAP_LAST_CAP"]


def test_find_executable_refuses_what_gos_lookpath_refuses(tmp_path):
    """runc's init looks the program up with Go's LookPath before `create` returns: a path
    without an execute bit is "permission denied" (podman: exit 126), a bare name not on PATH
    "executable file not found in $PATH" (exit 127)."""
    from rootless.errors import RootlessError
    from rootless.process import become
    plain, program = tmp_path / "plain", tmp_path / "program"
    plain.write_text("data\n")
    program.write_text("#!/bin/sh\n")
    os.chmod(plain, 0o644)
    os.chmod(program, 0o700)
    assert become.find_executable(str(program), {}) == str(program)
    assert become.find_executable("program", {"PATH": str(tmp_path)}) == str(program)
    for name, env, words in ((str(plain), {}, f'exec: "{plain}": permission denied'),
                             ("plain", {"PATH": str(tmp_path)}, 'exec: "plain": executable file not found in $PATH'),
                             (str(tmp_path / "missing"), {}, "no such file or directory")):
        with pytest.raises(RootlessError) as err:
            become.find_executable(name, env)
        assert words in err.value.message
