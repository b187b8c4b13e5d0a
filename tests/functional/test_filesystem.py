"""The container's filesystem where rootless once diverged from runc: a read-only /dev, mounts
through dangling symlinks, mount order, a missing cwd on a read-only root, device modes,
masked paths, tmpfs modes, and a rootfs whose /proc is a symlink.

Each test runs a real container as the test user and as root and checks what it saw; where
runc 1.1.5 can run the same bundle here (as the test user, and as root with the memory
cgroup hidden: helpers.runtime), it runs too and must print the same. Where current runc
(1.2 and later) changed what 1.1.5 does, the test follows current runc and says so
(docs/differences-from-runc.md, "Filesystem").
"""

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.rootfs import build_busybox_rootfs
from helpers.runtime import RUNC, Runtime

HAVE_RUNC = os.access(RUNC, os.X_OK)
DEFAULT_MOUNTS = make_config([], rootless=True)["mounts"]


def private_rootfs(runtime: Runtime, name: str, setup: Callable[[Path], None] | None = None) -> Path:
    """A busybox rootfs of this test's own (the container may create files in it), owned as
    the shared one is: by the test user."""
    owner = (runtime.user.uid, runtime.user.gid) if os.geteuid() == 0 else None
    path = runtime.work_dir / name
    path.mkdir()
    build_busybox_rootfs(path, None)
    if setup is not None:
        setup(path)
    if owner is not None:
        subprocess.run(["chown", "-hR", f"{owner[0]}:{owner[1]}", str(path)], check=True)
    return path


def run_in(runtime: Runtime, rootfs: Path | None, args: list[str], *, runc: bool = False,
           **overrides) -> subprocess.CompletedProcess:
    """`run` of a new container (args, config overrides) on `rootfs` (None: the shared one),
    with rootless or, with runc=True, with runc 1.1.5 as the same user."""
    saved = runtime.binary, runtime.rootfs
    try:
        if rootfs is not None:
            runtime.rootfs = rootfs
        if runc:
            runtime.binary = RUNC
            if runtime.rootless:  # runc maps only what the config says: the caller, as `runc spec --rootless`
                linux = dict(overrides.pop("linux", {}))
                linux["uidMappings"] = [{"containerID": 0, "hostID": runtime.user.uid, "size": 1}]
                linux["gidMappings"] = [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]
                overrides["linux"] = linux
        bundle = runtime.bundle(args, **overrides)
        container_id = runtime.new_id("runc" if runc else "t")
        result = runtime.run("run", "--bundle", bundle, container_id)
        if not runc:
            runtime.assert_no_leaks(container_id, bundle=bundle)
        return result
    finally:
        runtime.binary, runtime.rootfs = saved


def same_as_runc(runtime: Runtime, make_rootfs: Callable[[str], Path | None], script: str,
                 **overrides) -> str:
    """Run `sh -c script` with rootless and (when installed) with runc, each on a rootfs of
    its own from make_rootfs(name); both must exit 0 and print the same. Returns the output."""
    ours = run_in(runtime, make_rootfs("ours"), ["sh", "-c", script], **overrides)
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""
    if HAVE_RUNC:
        theirs = run_in(runtime, make_rootfs("runc"), ["sh", "-c", script], runc=True, **overrides)
        assert theirs.returncode == 0, theirs.stderr
        assert ours.stdout == theirs.stdout, f"rootless:\n{ours.stdout}\nrunc:\n{theirs.stdout}"
    return ours.stdout


def test_read_only_dev_is_filled_first(runtime: Runtime) -> None:
    """podman --read-only style: /dev mounted "ro". The nodes, links, and the mounts below it
    are made first, then /dev turns read-only, as runc does."""
    mounts = [dict(m, options=m["options"] + ["ro"]) if m["destination"] == "/dev" else m
              for m in make_config([], rootless=runtime.rootless)["mounts"]]
    out = same_as_runc(runtime, lambda name: None,
                       "ls /dev/null /dev/zero /dev/ptmx /dev/fd /dev/pts/ptmx /dev/shm; "
                       "touch /dev/new 2>/dev/null || echo dev-ro; echo ok > /dev/null && echo null-ok; "
                       "touch /dev/shm/new && echo shm-rw; "
                       "grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f6", mounts=mounts)
    lines = out.splitlines()
    assert lines[-4:] == ["dev-ro", "null-ok", "shm-rw", "ro,nosuid"], out


def _dangling(rootfs: Path) -> None:
    (rootfs / "dangle").symlink_to("/nonexist/deeper")       # an absolute component
    (rootfs / "reldangle").symlink_to("nothere/x")            # a relative one
    (rootfs / "dfile").symlink_to("/nowhere/file.txt")        # trailing, for a file
    (rootfs / "relup").symlink_to("../escape-target")         # trailing, climbing out


def test_mounts_through_dangling_symlinks_stay_in_the_rootfs(runtime: Runtime) -> None:
    """Dangling symlinks on the way to a destination, and as its last component, are
    resolved inside the rootfs and what is missing is made there, never on the host."""
    source = runtime.work_dir / "src"
    (source / "sub").mkdir(parents=True)
    (source / "file").write_text("filedata\n")
    for path in (source, source / "sub", source / "file"):
        os.chown(path, runtime.user.uid, runtime.user.gid)
    made: list[Path] = []

    def make_rootfs(name: str) -> Path:
        made.append(private_rootfs(runtime, name, _dangling))
        return made[-1]

    extra = [{"destination": "/dangle/x", "type": "bind", "source": str(source), "options": ["rbind"]},
             {"destination": "/reldangle/y", "type": "bind", "source": str(source), "options": ["rbind", "ro"]},
             {"destination": "/dfile", "type": "bind", "source": str(source / "file"), "options": ["bind"]},
             {"destination": "/relup", "type": "tmpfs", "source": "tmpfs"}]
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + extra
    out = same_as_runc(runtime, make_rootfs,
                       "cat /dfile /nowhere/file.txt; ls /nonexist/deeper/x /nothere/x/y; "
                       "ls -d /escape-target; cut -d' ' -f5 /proc/self/mountinfo | grep -v '^/proc\\|^/sys\\|^/dev'",
                       mounts=mounts)
    assert out.splitlines() == ["filedata", "filedata", "/nonexist/deeper/x:", "file", "sub", "",
                                "/nothere/x/y:", "file", "sub", "/escape-target",
                                "/", "/nonexist/deeper/x", "/nothere/x/y", "/nowhere/file.txt", "/escape-target"], out
    for rootfs in made:
        assert (rootfs / "nonexist/deeper/x").is_dir() and (rootfs / "nowhere/file.txt").is_file()
        assert (rootfs / "escape-target").is_dir()
    for outside in (Path("/nonexist"), Path("/nowhere"), Path("/nothere"), runtime.work_dir / "escape-target"):
        assert not outside.exists(), f"{outside} was made outside the rootfs"


def test_bind_source_inside_an_earlier_mount_sees_that_mount(runtime: Runtime) -> None:
    """Mounts are made in config order: a bind whose source lies under an earlier mount
    (here the rootfs's /data, covered by a tmpfs) binds what that mount shows."""
    def make_rootfs(name: str) -> Path:
        return private_rootfs(runtime, name, lambda r: (r / "data").mkdir())

    ours_rootfs = make_rootfs("ours")
    extra = lambda rootfs: [{"destination": "/data", "type": "tmpfs", "source": "tmpfs"},
                            {"destination": "/other", "type": "bind", "source": str(rootfs / "data"),
                             "options": ["rbind"]}]
    script = "touch /data/written; ls /other; grep -c ' /other ' /proc/self/mountinfo"
    base = make_config([], rootless=runtime.rootless)["mounts"]
    ours = run_in(runtime, ours_rootfs, ["sh", "-c", script], mounts=base + extra(ours_rootfs))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.split() == ["written", "1"]
    assert not (ours_rootfs / "data" / "written").exists()  # it went to the tmpfs, not the image
    if HAVE_RUNC:
        runc_rootfs = make_rootfs("runc")
        theirs = run_in(runtime, runc_rootfs, ["sh", "-c", script], runc=True, mounts=base + extra(runc_rootfs))
        assert theirs.returncode == 0, theirs.stderr
        assert theirs.stdout == ours.stdout


def test_missing_cwd_is_made_before_the_root_turns_read_only(runtime: Runtime) -> None:
    out = same_as_runc(runtime, lambda name: private_rootfs(runtime, name),
                       "pwd; touch /x 2>/dev/null || echo root-ro",
                       process={"cwd": "/does/not/exist"}, root={"readonly": True})
    assert out.split() == ["/does/not/exist", "root-ro"]


def test_device_nodes_get_exactly_their_file_mode(runtime: Runtime) -> None:
    """The caller's umask (027 here) does not reach the nodes: as root they are made with
    fileMode's permission bits; a rootless container binds the host's nodes, as runc does."""
    devices = [{"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o660, "uid": 0, "gid": 0}]
    old = os.umask(0o027)
    try:
        out = same_as_runc(runtime, lambda name: None, "stat -c '%n %A' /dev/full /dev/null /dev/zero",
                           linux={"devices": devices})
    finally:
        os.umask(old)
    expected_full = "crw-rw----" if not runtime.rootless else stat.filemode(os.stat("/dev/full").st_mode)
    assert out.splitlines() == [f"/dev/full {expected_full}", "/dev/null crw-rw-rw-", "/dev/zero crw-rw-rw-"]


def test_masked_paths_once_each_and_one_tmpfs_for_directories(runtime: Runtime) -> None:
    """A path listed twice is masked once; masked directories share one read-only tmpfs
    (current runc; 1.1.5 stacks a second mount and makes a tmpfs per directory)."""
    masked = ["/proc/acpi", "/proc/keys", "/proc/acpi", "/sys/firmware", "/proc/keys", "/proc/timer_list"]
    out = run_in(runtime, None, ["sh", "-c", "cat /proc/self/mountinfo; echo --; ls /proc/acpi | wc -l; "
                                             "cat /proc/keys | wc -c; touch /proc/acpi/x 2>/dev/null || echo ro"],
                 linux={"maskedPaths": masked})
    assert out.returncode == 0, out.stderr
    mountinfo, rest = out.stdout.split("--\n")
    rows = [line.split() for line in mountinfo.splitlines()]
    at = {point: [r for r in rows if r[4] == point] for point in ("/proc/acpi", "/proc/keys", "/sys/firmware")}
    assert all(len(found) == 1 for found in at.values()), at
    assert at["/proc/acpi"][0][2] == at["/sys/firmware"][0][2], "the masked directories share one tmpfs"
    assert at["/proc/acpi"][0][5].startswith("ro")
    assert rest.split() == ["0", "0", "ro"]


def _modes(rootfs: Path) -> None:
    for name, mode in (("d700", 0o700), ("d1777", 0o1777), ("d711", 0o711)):
        (rootfs / name).mkdir()
        os.chmod(rootfs / name, mode)


def test_tmpfs_takes_the_mode_of_the_directory_it_covers(runtime: Runtime) -> None:
    """Without mode= a tmpfs keeps the covered directory's mode; a given mode= wins (current
    runc; 1.1.5 chmods the directory's mode over it, so /d711 is compared with ours only)."""
    extra = [{"destination": "/d700", "type": "tmpfs", "source": "tmpfs"},
             {"destination": "/d1777", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]},
             {"destination": "/new", "type": "tmpfs", "source": "tmpfs"}]
    mounts = make_config([], rootless=runtime.rootless)["mounts"]
    out = same_as_runc(runtime, lambda name: private_rootfs(runtime, name, _modes),
                       "stat -c '%n %a' /d700 /d1777 /new; touch /d1777/x 2>/dev/null || echo ro",
                       mounts=mounts + extra)
    assert out.splitlines() == ["/d700 700", "/d1777 1777", "/new 1777", "ro"]
    given = run_in(runtime, private_rootfs(runtime, "given", _modes), ["stat", "-c", "%a", "/d711"],
                   mounts=mounts + [{"destination": "/d711", "type": "tmpfs", "source": "tmpfs",
                                     "options": ["mode=755"]}])
    assert given.returncode == 0, given.stderr
    assert given.stdout == "755\n"


def _fake_proc(rootfs: Path) -> None:
    """/proc as a symlink to a folder of plain files that look like procfs's."""
    os.rmdir(rootfs / "proc")
    fake = rootfs / "fakeproc"
    for folder in ("sys/kernel", "self/attr"):
        (fake / folder).mkdir(parents=True)
    for name in ("sys/kernel/domainname", "self/attr/exec", "self/oom_score_adj", "self/setgroups"):
        (fake / name).write_text("")
    (rootfs / "proc").symlink_to("/fakeproc")


def _assert_fake_untouched(rootfs: Path) -> None:
    written = [p for p in (rootfs / "fakeproc").rglob("*") if p.is_file() and p.stat().st_size]
    assert written == [], f"the init wrote to the fake procfs: {written}"


def test_rootfs_with_proc_symlink_is_refused(runtime: Runtime) -> None:
    """The CVE-2019-16884 / CVE-2019-19921 class: a rootfs whose /proc is a symlink to files
    of its own. The proc mount is refused, in runc's words, and nothing is left behind."""
    rootfs = private_rootfs(runtime, "evil", _fake_proc)
    result = run_in(runtime, rootfs, ["echo", "started"], linux={"sysctl": {"kernel.domainname": "evil"}})
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert result.stderr == ('rootless: mount /proc: filesystem "proc" must be mounted on ordinary directory '
                             "(it is a symlink in the rootfs)\n")
    _assert_fake_untouched(rootfs)
    if HAVE_RUNC:
        theirs = run_in(runtime, private_rootfs(runtime, "evil-runc", _fake_proc), ["echo", "started"], runc=True)
        assert theirs.returncode != 0
        assert 'filesystem \\"proc\\" must be mounted on ordinary directory' in theirs.stderr


def test_procfs_writes_land_on_procfs_only(runtime: Runtime) -> None:
    """Without a proc mount the fake /proc stays: the init's write of a sysctl must find it is
    not procfs and stop, with one line, writing nothing."""
    rootfs = private_rootfs(runtime, "evil", _fake_proc)
    mounts = [m for m in make_config([], rootless=runtime.rootless)["mounts"] if m["destination"] == "/dev"]
    result = run_in(runtime, rootfs, ["echo", "started"], mounts=mounts,
                    linux={"maskedPaths": [], "readonlyPaths": [], "sysctl": {"kernel.domainname": "evil"}})
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert result.stderr == ("rootless: sysctl kernel.domainname=evil: write /proc/sys/kernel/domainname: "
                             "not on procfs (is /proc in the rootfs a symlink or a fake?)\n")
    _assert_fake_untouched(rootfs)


@pytest.mark.parametrize("devices", [[{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]], ids=["null"])
def test_no_default_nodes_in_a_bound_dev(root_runtime: Runtime, devices: list) -> None:
    """A /dev bound from elsewhere is used as it is: no node is made in it (runc's
    needsSetupDev), so a bind of the host's /dev never has its nodes remade."""
    runtime = root_runtime
    dev = runtime.work_dir / "devdir"
    dev.mkdir()
    (dev / "marker").write_text("")
    mounts = [m for m in make_config([], rootless=False)["mounts"] if not m["destination"].startswith("/dev")]
    mounts.append({"destination": "/dev", "type": "bind", "source": str(dev), "options": ["rbind"]})
    result = run_in(runtime, None, ["ls", "/dev"], mounts=mounts, linux={"devices": devices, "maskedPaths": []})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["marker"]
    assert sorted(os.listdir(dev)) == ["marker"]


def test_no_mount_namespace_is_refused_as_runc_refuses_it(runtime: Runtime) -> None:
    """Without a mount namespace runc refuses masked and read-only paths in these words; with
    none of them it would (as root) mount into the caller's mount namespace and chroot, which
    rootless refuses (docs/differences-from-runc.md)."""
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts") + (("user",) if runtime.rootless else ())]
    masked = run_in(runtime, None, ["true"], linux={"namespaces": namespaces})
    assert masked.returncode == 1
    assert masked.stderr.count("\n") == 1
    assert "unable to restrict sys entries without a private MNT namespace" in masked.stderr
    if HAVE_RUNC:
        theirs = run_in(runtime, None, ["true"], runc=True, linux={"namespaces": namespaces})
        assert theirs.returncode == 1
        assert "unable to restrict sys entries without a private MNT namespace" in theirs.stderr
    bare = run_in(runtime, None, ["true"], mounts=[],
                  linux={"namespaces": namespaces, "maskedPaths": [], "readonlyPaths": []})
    assert (bare.returncode, bare.stderr) == (1, "rootless: config.json: linux.namespaces must include a mount "
                                                 "namespace (the rootfs needs one)\n")


def test_exec_writes_land_on_procfs_only(runtime: Runtime) -> None:
    """`exec` into a container whose /proc is the image's fake: the process's write of
    oom_score_adj (made inside the container) must find it is not procfs and stop."""
    rootfs = private_rootfs(runtime, "evil", _fake_proc)
    adj = int(Path("/proc/self/oom_score_adj").read_text())
    mounts = [m for m in make_config([], rootless=runtime.rootless)["mounts"] if m["destination"] == "/dev"]
    saved = runtime.rootfs
    runtime.rootfs = rootfs
    try:
        # A writable root: else the open fails (read-only file system) before the check runs.
        bundle = runtime.bundle(["sleep", "600"], mounts=mounts, process={"oomScoreAdj": adj},
                                root={"readonly": False}, linux={"maskedPaths": [], "readonlyPaths": []})
    finally:
        runtime.rootfs = saved
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--bundle", bundle, container_id, check=True)
    result = runtime.run("exec", container_id, "echo", "started")
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert result.stderr == (f"rootless: process.oomScoreAdj {adj}: write /proc/self/oom_score_adj: "
                             "not on procfs (is /proc in the rootfs a symlink or a fake?)\n")
    _assert_fake_untouched(rootfs)
    runtime.run("delete", "-f", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_without_a_dev_mount_the_images_dev_gets_the_nodes(runtime: Runtime) -> None:
    """No /dev in config.mounts: runc makes its nodes and links in the image's /dev (binds as
    an unprivileged user), so /dev/null is there for the masked paths too."""
    mounts = [m for m in make_config([], rootless=runtime.rootless)["mounts"] if not m["destination"].startswith("/dev")]
    out = same_as_runc(runtime, lambda name: private_rootfs(runtime, name),
                       "echo $(ls /dev); readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo null-ok; "
                       "wc -c < /proc/keys", mounts=mounts)
    assert out.splitlines() == ["fd full null ptmx random stderr stdin stdout tty urandom zero",
                                "/proc/self/fd", "pts/ptmx", "null-ok", "0"]


@pytest.mark.parametrize("destination, refusal", [
    ("/proc/sys/kernel", "cannot be mounted because it is inside /proc"),
    ("/proc/self/attr", "cannot be mounted because it is inside /proc"),  # through the symlink /proc/self
    ("/proc", "cannot be mounted because it is not of type proc"),
    ("/proc/uptime", None),  # the files lxcfs emulates may be covered
], ids=["sys", "attr", "proc", "uptime"])
def test_mounts_over_procfs_are_refused_as_runc_refuses_them(runtime: Runtime, destination: str,
                                                             refusal: str | None) -> None:
    """The CVE-2019-16884 class: a config mount over /proc, or inside it, would hand the
    container's files to writes meant for the kernel. runc's checkProcMount, word for word."""
    source = runtime.work_dir / "src"
    source.mkdir()
    (source / "file").write_text("emulated\n")
    os.chown(source, runtime.user.uid, runtime.user.gid)
    bind_source = source / "file" if destination == "/proc/uptime" else source
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": destination, "type": "bind", "source": str(bind_source), "options": ["rbind"]}]
    ours = run_in(runtime, None, ["cat", "/proc/uptime"], mounts=mounts)
    theirs = run_in(runtime, None, ["cat", "/proc/uptime"], runc=True, mounts=mounts) if HAVE_RUNC else None
    if refusal is None:
        assert (ours.returncode, ours.stdout, ours.stderr) == (0, "emulated\n", "")
        assert theirs is None or (theirs.returncode, theirs.stdout) == (0, "emulated\n")
        return
    assert ours.returncode == 1 and ours.stdout == ""
    assert ours.stderr.startswith(f"rootless: mount {destination}: ") and ours.stderr.count("\n") == 1
    assert ours.stderr.rstrip().endswith(refusal), ours.stderr
    assert theirs is None or (theirs.returncode == 1 and refusal in theirs.stderr), theirs and theirs.stderr
