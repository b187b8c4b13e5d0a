"""Process and kernel attributes seen from inside a real container: sysctl, personality,
scheduler, I/O priority, time namespace offsets, LSM labels, and the mount options tmpcopyup
and idmap. Bad values give one line on stderr and leave nothing behind."""

import os
import platform
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.runtime import Runtime


def create_fails(runtime: Runtime, *needles: str, **overrides) -> str:
    bundle = runtime.bundle(["true"], **overrides)
    container_id = runtime.new_id("bad")
    result = runtime.run("create", "--bundle", bundle, container_id)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    runtime.assert_no_leaks(container_id, bundle=bundle)
    assert runtime.run("list", "-q", check=True).stdout == ""
    return lines[0]


def namespaces_plus(runtime: Runtime, *extra: str) -> list[dict]:
    base = make_config(["true"], rootless=runtime.rootless)["linux"]["namespaces"]
    return base + [{"type": kind} for kind in extra]


def stat_fields(line: str) -> list[str]:
    """/proc/PID/stat after the command name: index 0 is field 3 (the state)."""
    return line[line.rindex(")") + 2:].split()


# 1. sysctl

def test_namespaced_sysctls_are_seen_inside(runtime: Runtime) -> None:
    out = runtime.run_script("cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max "
                                    "/proc/sys/net/ipv4/ip_forward",
                           linux={"sysctl": {"kernel.shmmax": "123456789", "fs/mqueue/msg_max": "17",
                                             "net.ipv4.ip_forward": "1"}})
    assert out.split() == ["123456789", "17", "1"]


def test_sysctl_not_namespaced_is_refused(runtime: Runtime) -> None:
    create_fails(runtime, 'config.json: linux.sysctl: "vm.swappiness" is not namespaced',
                 linux={"sysctl": {"vm.swappiness": "10"}})


def test_net_sysctl_needs_a_network_namespace(runtime: Runtime) -> None:
    namespaces = [ns for ns in namespaces_plus(runtime) if ns["type"] != "network"]
    create_fails(runtime, '"net.ipv4.ip_forward" needs a network namespace',
                 linux={"sysctl": {"net.ipv4.ip_forward": "1"}, "namespaces": namespaces})


# 2. personality

@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 shows i686 on x86_64")
def test_personality_linux32(runtime: Runtime) -> None:
    out = runtime.run_script("uname -m", linux={"personality": {"domain": "LINUX32"}})
    assert out.strip() == "i686"


def test_personality_flags_are_ignored_with_runcs_warning(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"], linux={"personality": {"domain": "LINUX", "flags": ["x"]}})
    result = runtime.run("run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0
    assert result.stderr == ("rootless: warning: ignoring unsupported personality flags: [x] because personality "
                             "flag has not supported at this time\n")


# 3. scheduler and I/O priority

def test_scheduler_batch_and_nice(runtime: Runtime) -> None:
    out = runtime.run_script("cat /proc/self/stat",
                           process={"scheduler": {"policy": "SCHED_BATCH", "nice": 7}})
    fields = stat_fields(out)
    assert fields[16] == "7"     # field 19: nice
    assert fields[38] == "3"     # field 41: policy (SCHED_BATCH)


def test_scheduler_realtime(runtime: Runtime) -> None:
    overrides = {"process": {"scheduler": {"policy": "SCHED_RR", "priority": 10}}}
    if runtime.rootless:
        create_fails(runtime, "sched_setattr", "Operation not permitted", **overrides)
        return
    fields = stat_fields(runtime.run_script("cat /proc/self/stat", **overrides))
    assert fields[38] == "2" and fields[37] == "10"   # policy SCHED_RR, rt_priority 10


def test_scheduler_bad_priority_is_refused(runtime: Runtime) -> None:
    create_fails(runtime, "process.scheduler.priority", process={"scheduler": {"policy": "SCHED_FIFO"}})


def test_io_priority(runtime: Runtime) -> None:
    out = runtime.run_script("ionice -p $$", process={"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}})
    assert out.strip() == "best-effort: prio 6"
    out = runtime.run_script("ionice -p $$", process={"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}})
    assert out.strip().startswith("idle")


# 4. time namespace offsets

def test_time_offsets(runtime: Runtime) -> None:
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("this kernel has no time namespaces")
    ten_days = 10 * 86400
    out = runtime.run_script("cat /proc/uptime; readlink /proc/self/ns/time",
                           linux={"namespaces": namespaces_plus(runtime, "time"),
                                  "timeOffsets": {"monotonic": {"secs": ten_days},
                                                  "boottime": {"secs": ten_days, "nanosecs": 5}}})
    uptime, ns = out.split()[0], out.split()[-1]
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert float(uptime) >= ten_days + host_uptime - 5
    assert ns != os.readlink("/proc/self/ns/time")


def test_time_offsets_need_a_time_namespace(runtime: Runtime) -> None:
    create_fails(runtime, "linux.timeOffsets needs a time namespace",
                 linux={"timeOffsets": {"monotonic": {"secs": 5}}})


# 5. LSM labels

def test_apparmor_profile_without_apparmor(runtime: Runtime) -> None:
    from rootless.process import attrs
    if attrs.apparmor_enabled():
        pytest.skip("AppArmor is enabled on this host")
    create_fails(runtime, "process.apparmorProfile", "AppArmor is not enabled on this host",
                 process={"apparmorProfile": "unconfined"})


def test_selinux_labels_without_selinux(runtime: Runtime) -> None:
    from rootless.process import attrs
    if attrs.selinux_enabled():
        pytest.skip("SELinux is enabled on this host")
    create_fails(runtime, "process.selinuxLabel", "SELinux is not enabled on this host",
                 process={"selinuxLabel": "system_u:system_r:container_t:s0"})
    create_fails(runtime, "linux.mountLabel", "SELinux is not enabled on this host",
                 linux={"mountLabel": "system_u:object_r:container_file_t:s0"})


# 6. mount options tmpcopyup and idmap/ridmap

def test_tmpcopyup_fills_the_tmpfs(runtime: Runtime) -> None:
    # /etc of the busybox rootfs holds passwd and group; the tmpfs over it must show them, writable.
    out = runtime.run_script("grep -c . /etc/passwd; stat -c %a /etc/passwd; echo x > /etc/new && "
                                    "echo written; grep tmpfs /proc/self/mounts | grep -c ' /etc '",
                           mounts=make_config(["true"], rootless=runtime.rootless)["mounts"]
                           + [{"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                               "options": ["tmpcopyup", "mode=755"]}])
    count, mode, written, mounted = out.split()
    expected = (runtime.rootfs / "etc" / "passwd").read_text().count("\n")
    assert int(count) == expected and expected > 0
    assert mode == oct((runtime.rootfs / "etc" / "passwd").stat().st_mode & 0o777)[2:]
    assert written == "written" and mounted == "1"


def test_tmpcopyup_needs_tmpfs(runtime: Runtime) -> None:
    create_fails(runtime, "option tmpcopyup needs a tmpfs mount",
                 mounts=[{"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["bind", "tmpcopyup"]}])


def _idmap_source(runtime: Runtime) -> Path:
    source = runtime.work_dir / "idmapped"
    (source / "sub").mkdir(parents=True)
    for path in (source / "file", source / "sub" / "inner"):
        path.write_text("x")
    (source / "other").write_text("y")
    if os.geteuid() == 0:
        for path in (source, source / "sub", source / "file", source / "sub" / "inner"):
            os.chown(path, 0, 0)
        os.chown(source / "other", 5, 5)
    return source


def test_idmapped_bind_mount(runtime: Runtime) -> None:
    source = _idmap_source(runtime)
    mapping = [{"containerID": 0, "hostID": 1234, "size": 1}]
    entry = {"destination": "/mnt", "type": "bind", "source": str(source), "options": ["rbind", "ridmap"],
             "uidMappings": mapping, "gidMappings": mapping}
    mounts = make_config(["true"], rootless=runtime.rootless)["mounts"] + [entry]
    if runtime.rootless:
        # The host's filesystem belongs to the initial user namespace: only root may idmap it.
        create_fails(runtime, "mount_setattr(MOUNT_ATTR_IDMAP)", "/mnt", "Operation not permitted", mounts=mounts)
        return
    out = runtime.run_script("stat -c '%u:%g' /mnt/file /mnt/sub/inner /mnt/other", mounts=mounts)
    assert out.split() == ["1234:1234", "1234:1234", "65534:65534"]
    assert os.stat(source / "file").st_uid == 0  # the files themselves are unchanged


def test_idmap_without_mappings_takes_the_containers_own(runtime: Runtime) -> None:
    """`idmap` with no mappings on the mount (podman's -v DIR:DST:idmap) means the container's
    own user namespace, as current runc reads it: files owned by 0 and 5 on disk are the
    container's 0 and 5, not nobody. Real root makes the tree before the init enters its user
    namespace (which loses the right to idmap the host's filesystem)."""
    source = _idmap_source(runtime)
    entry = {"destination": "/mnt", "type": "bind", "source": str(source), "options": ["rbind", "idmap"]}
    linux = {"namespaces": namespaces_plus(runtime, *([] if runtime.rootless else ["user"])),
             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
    mounts = make_config(["true"], rootless=runtime.rootless)["mounts"] + [entry]
    if runtime.rootless:
        # Its own maps are planned by idmap/; the host's filesystem still refuses an unprivileged idmap.
        create_fails(runtime, "mount_setattr(MOUNT_ATTR_IDMAP)", "/mnt", "Operation not permitted", mounts=mounts)
        return
    out = runtime.run_script("stat -c '%u:%g' /mnt/file /mnt/other", mounts=mounts,
                             linux=linux)
    assert out.split() == ["0:0", "5:5"]
    plain = runtime.run_script("stat -c '%u:%g' /mnt/file", linux=linux,
                               mounts=mounts[:-1] + [{**entry, "options": ["rbind"]}])
    assert plain.split() == ["65534:65534"]  # without idmap: unmapped IDs


def test_idmap_needs_both_mappings_a_bind_and_a_user_namespace(runtime: Runtime) -> None:
    one = [{"containerID": 0, "hostID": 1234, "size": 1}]
    create_fails(runtime, "needs both uidMappings and gidMappings",
                 mounts=[{"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
                          "uidMappings": one}])
    create_fails(runtime, "idmapped mounts need a bind mount",
                 mounts=[{"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}])
    if not runtime.rootless:
        # Real root with no user namespace: the container has no maps of its own (runc refuses too).
        create_fails(runtime, "needs a user namespace with ID maps",
                     mounts=[{"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]}])
