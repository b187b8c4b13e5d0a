"""What a container sees: ID maps, PID 1, hostname, mounts, /dev, capabilities, paths.

Each test runs a real container (real namespaces, real newuidmap for rootless) and checks the
container's own report, once as the unprivileged test user and once as root.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.bundle import DEFAULT_CAPS, MASKED_PATHS, make_bundle, make_config
from helpers.runtime import Runtime
from helpers.users import chown_tree, subordinate_range

CAP_NUMBERS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
               "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29}


def cap_mask(names) -> str:
    return f"{sum(1 << CAP_NUMBERS[n] for n in names):016x}"


def status_field(report: str, field: str) -> str:
    for line in report.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {report!r}")


def test_uid_and_gid_maps(runtime: Runtime) -> None:
    out = runtime.run_script("cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u; id -g")
    uid_map, gid_map, ids = out.split("--\n")
    rows = lambda text: [[int(n) for n in line.split()] for line in text.strip().splitlines()]
    if runtime.rootless:
        sub_uid = subordinate_range(runtime.user, "/etc/subuid")
        sub_gid = subordinate_range(runtime.user, "/etc/subgid")
        # The caller is root inside; its subordinate ranges follow from container ID 1.
        assert rows(uid_map) == [[0, runtime.user.uid, 1], [1, sub_uid.start, len(sub_uid)]]
        assert rows(gid_map) == [[0, runtime.user.gid, 1], [1, sub_gid.start, len(sub_gid)]]
    else:
        assert rows(uid_map) == [[0, 0, 2**32 - 1]]
    assert ids.split() == ["0", "0"]


def test_pid_one_hostname_and_lo(runtime: Runtime) -> None:
    out = runtime.run_script("echo $$; hostname; ip -o link show lo")
    pid, hostname, lo = out.splitlines()
    assert pid == "1"
    assert hostname == "rootless"
    assert ",UP," in lo or "<LOOPBACK,UP" in lo


def test_mounts_and_read_only_root(runtime: Runtime) -> None:
    out = runtime.run_script("cat /proc/self/mounts; echo --; touch /x 2>&1; echo rc=$?; "
                                    "echo w > /tmp/ok 2>&1 || echo tmp-ro; ls /dev")
    mounts, rest = out.split("--\n")
    table = {fields[1]: fields for fields in (line.split() for line in mounts.splitlines())}
    assert table["/"][3].split(",")[0] == "ro"
    assert table["/proc"][2] == "proc"
    assert table["/dev"][2] == "tmpfs"
    assert table["/dev/pts"][2] == "devpts"
    assert table["/dev/shm"][2] == "tmpfs" and "nodev" in table["/dev/shm"][3]
    assert table["/dev/mqueue"][2] == "mqueue"
    assert "ro" in table["/sys"][3].split(",")
    assert "ro" in table["/sys/fs/cgroup"][3].split(",")
    assert "Read-only file system" in rest and "rc=1" in rest
    dev = set(rest.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd", "stdin"} <= dev


def test_devices_work(runtime: Runtime) -> None:
    out = runtime.run_script("echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; "
                                    "head -c 8 /dev/urandom | wc -c; readlink /dev/fd; readlink /dev/ptmx")
    lines = out.splitlines()
    assert lines[0] == "null-ok"
    assert lines[1].split() == ["00", "00", "00", "00"]
    assert lines[2].strip() == "8"
    assert lines[3:] == ["/proc/self/fd", "pts/ptmx"]


def test_masked_and_read_only_paths(runtime: Runtime) -> None:
    present = [p for p in MASKED_PATHS if Path(p).exists()]  # masking skips what the host lacks
    out = runtime.run_script("for p in " + " ".join(present) + "; do "
                                    "if [ -d $p ]; then echo $p $(ls -A $p | wc -l); else echo $p $(cat $p | wc -c); fi; done; "
                                    "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo wrote || echo ro-sys; "
                                    "umount /proc/keys 2>/dev/null && echo unmounted || echo still-masked; "
                                    "mount -o remount,rw /proc/sys 2>/dev/null && echo remounted || echo still-ro")
    lines = out.splitlines()
    assert lines[:len(present)] == [f"{p} 0" for p in present]
    assert lines[len(present):] == ["ro-sys", "still-masked", "still-ro"]


def test_capabilities_and_no_new_privs(runtime: Runtime) -> None:
    out = runtime.run_script("cat /proc/self/status")
    expected = cap_mask(DEFAULT_CAPS)
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert status_field(out, field) == expected, field
    assert status_field(out, "CapInh") == "0" * 16
    assert status_field(out, "CapAmb") == "0" * 16
    assert status_field(out, "NoNewPrivs") == "1"


def test_process_user_env_cwd_rlimits(runtime: Runtime) -> None:
    process = {"user": {"uid": 1000, "gid": 1000, "additionalGids": [1001, 1002], "umask": 0o027},
               "cwd": "/tmp/work", "env": ["PATH=/bin", "GREETING=hello"],
               "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
               "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                                "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}}
    mounts_extra = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [mounts_extra]
    out = runtime.run_script("id -u; id -g; id -G; pwd; echo $GREETING; ulimit -n; ulimit -Hn; umask; "
                                    "grep -E '^Cap(Eff|Amb)' /proc/self/status",
                           process=process, mounts=mounts)
    lines = out.splitlines()
    assert lines[:8] == ["1000", "1000", "1000 1001 1002", "/tmp/work", "hello", "256", "512", "0027"]
    kill_mask = cap_mask(["CAP_KILL"])
    assert status_field(out, "CapEff") == kill_mask and status_field(out, "CapAmb") == kill_mask


def test_bind_mount_of_a_host_folder(runtime: Runtime) -> None:
    shared = runtime.work_dir / "shared"
    shared.mkdir()
    (shared / "greeting").write_text("from the host\n")
    os.chown(shared, runtime.user.uid, runtime.user.gid)
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "ro"]},
        {"destination": "/rw", "type": "bind", "source": str(shared), "options": ["bind"]},
    ]
    out = runtime.run_script("cat /data/greeting; touch /data/x 2>/dev/null || echo ro; "
                                    "echo new > /rw/made && echo rw", mounts=mounts)
    assert out.splitlines() == ["from the host", "ro", "rw"]
    assert (shared / "made").read_text() == "new\n"


def test_no_pivot(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"])
    result = runtime.run("run", "--no-pivot", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert "bin" in result.stdout.split()


def test_symlinked_mount_destination_stays_inside(runtime: Runtime) -> None:
    """A destination that is an absolute symlink in the rootfs resolves inside the rootfs."""
    rootfs = runtime.work_dir / "evil-rootfs"
    shutil.copytree(runtime.rootfs, rootfs, symlinks=True)
    outside = runtime.work_dir / "outside"
    outside.mkdir()
    (rootfs / "escape").symlink_to(str(outside))
    chown_tree(rootfs, runtime.user)
    chown_tree(outside, runtime.user)
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/escape", "type": "tmpfs", "source": "tmpfs", "options": []}]
    config = make_config(["sh", "-c", "touch /escape/inside; echo done"], rootless=runtime.rootless, mounts=mounts,
                         root={"readonly": False})
    bundle = make_bundle(runtime.work_dir / "evil-bundle", config, rootfs)
    result = runtime.run("run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert list(outside.iterdir()) == []
    assert (rootfs / str(outside).lstrip("/")).is_dir()  # created inside the rootfs instead


def test_explicit_maps_without_the_caller_reach_start(runtime: Runtime) -> None:
    """uidMappings from config.json, none of them the caller: the container's root is a
    subordinate ID, which must still reach exec.fifo (rootless), or any range (root)."""
    sub_uid = subordinate_range(runtime.user, "/etc/subuid") if runtime.rootless else range(200000, 265536)
    sub_gid = subordinate_range(runtime.user, "/etc/subgid") if runtime.rootless else range(200000, 265536)
    maps = {"uidMappings": [{"containerID": 0, "hostID": sub_uid.start, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": sub_gid.start, "size": 65536}],
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network", "user")]}
    bundle = runtime.bundle(["sh", "-c", "cat /proc/self/uid_map; id -u; ls -n /bin/sh | awk '{print $3}'"],
                            linux=maps)
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    init = runtime.state(container_id)["pid"]
    assert Path(f"/proc/{init}/status").read_text().split("Uid:")[1].split()[0] == str(sub_uid.start)
    runtime.run("start", container_id, check=True)
    runtime.wait_for_status(container_id, "stopped")
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(init,))


def test_explicit_maps_output(runtime: Runtime) -> None:
    sub_uid = subordinate_range(runtime.user, "/etc/subuid") if runtime.rootless else range(200000, 265536)
    sub_gid = subordinate_range(runtime.user, "/etc/subgid") if runtime.rootless else range(200000, 265536)
    maps = {"uidMappings": [{"containerID": 0, "hostID": sub_uid.start, "size": 1000}],
            "gidMappings": [{"containerID": 0, "hostID": sub_gid.start, "size": 1000}],
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network", "user")]}
    out = runtime.run_script("cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox", linux=maps)
    uid_map, uid, owner = out.splitlines()
    assert uid_map.split() == ["0", str(sub_uid.start), "1000"]
    assert uid == "0"
    assert owner == "65534"  # the rootfs belongs to the test user, who is not mapped here


def test_config_devices(runtime: Runtime) -> None:
    """linux.devices: made with mknod as root (mode and owner from the config); a user
    namespace may not mknod, so rootless binds the host's node instead."""
    devices = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 0, "gid": 0}]
    out = runtime.run_script("stat -c '%F %t:%T %a' /dev/fuse", linux={"devices": devices})
    numbers, mode = out.split()[-2:]
    assert out.startswith("character special file") and numbers == "a:e5"
    assert mode == ("640" if not runtime.rootless else oct(Path("/dev/fuse").stat().st_mode & 0o777)[2:])


def test_oom_score_adj_and_domainname(runtime: Runtime) -> None:
    out = runtime.run_script("cat /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname; hostname",
                             process={"oomScoreAdj": 500}, domainname="example.org")
    assert out.split() == ["500", "example.org", "rootless"]


def test_recursive_read_only_bind(runtime: Runtime) -> None:
    """`rro` makes every mount below a bind read-only (mount_setattr AT_RECURSIVE); plain `ro`
    covers only the top one."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs below a host folder (tests/run as root does)")
    host = runtime.work_dir / "tree"
    (host / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", str(host / "sub")], check=True)
    try:
        mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
            {"destination": "/rro", "type": "bind", "source": str(host), "options": ["rbind", "rro"]},
            {"destination": "/ro", "type": "bind", "source": str(host), "options": ["rbind", "ro"]}]
        out = runtime.run_script("touch /rro/sub/x 2>/dev/null && echo rro-writable || echo rro-read-only; "
                                 "touch /ro/sub/y 2>/dev/null && echo ro-sub-writable || echo ro-sub-read-only; "
                                 "touch /ro/z 2>/dev/null && echo ro-writable || echo ro-read-only",
                                 mounts=mounts)
        assert out.split() == ["rro-read-only", "ro-sub-writable", "ro-read-only"]
    finally:
        subprocess.run(["umount", str(host / "sub")], check=True)
