"""`rlx run`'s seccomp profile, as the unprivileged test user through the real entry point:
podman's default profile unless `--security-opt seccomp=unconfined`, made for the container's
capabilities (the same profile podman writes for the same container), and `seccomp=FILE` in
either format.

What the profile refuses is shown with a call the kernel itself would allow: in a user and UTS
namespace of its own (busybox `unshare -U -r -u`) the process may set that namespace's hostname,
but podman's profile refuses sethostname to a container without CAP_SYS_ADMIN."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers.users import User, chown_tree, clean_env, command_as
from test_images import Rlx, images_dir, layers  # noqa: F401 - fixtures
from test_rlx_run import leftovers, rlx  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run rlx as the test user")

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
NESTED_HOSTNAME = "unshare -U -r -u hostname nested && echo nested-ok"
needs_profile = pytest.mark.skipif(not PODMAN_PROFILE.exists() and not Path("/etc/containers/seccomp.json").exists(),
                                   reason="no default seccomp profile (golang-github-containers-common)")


def run_base(rlx: Rlx, images_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:  # noqa: F811
    """`rlx run --rm --network none ARGS`, the test image loaded on first use."""
    if not getattr(rlx, "loaded", False):
        rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
        rlx.loaded = True
    return rlx.run("run", "--rm", "--network", "none", *args, check=check)


def kept_config(rlx: Rlx, name: str) -> dict:  # noqa: F811
    """config.json of the container `name`, kept (run without --rm)."""
    for record in (rlx.store / "containers").glob("*/record.json"):
        if json.loads(record.read_text())["name"] == name:
            return json.loads((record.parent / "bundle" / "config.json").read_text())
    raise AssertionError(f"no container {name}")


@needs_profile
def test_the_default_profile_refuses_what_podmans_does(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    script = f"grep Seccomp: /proc/self/status; {NESTED_HOSTNAME}"
    confined = run_base(rlx, images_dir, "localhost/base:1", "sh", "-c", script, check=False)
    assert confined.stdout == "Seccomp:\t2\n", confined.stdout
    assert "sethostname: Operation not permitted" in confined.stderr, confined.stderr
    unconfined = run_base(rlx, images_dir, "--security-opt", "seccomp=unconfined", "localhost/base:1", "sh", "-c", script)
    assert unconfined.stdout == "Seccomp:\t0\nnested-ok\n", unconfined.stderr
    again = run_base(rlx, images_dir, "localhost/base:1", "true")
    assert again.stderr == "", "the profile is said under --debug only"
    debug = rlx.run("--debug", "run", "--rm", "--network", "none", "localhost/base:1", "true")
    assert "rlx: seccomp: the default profile /" in debug.stderr, debug.stderr
    # the same profile on every run: the runtime compiled it once (rootless/process/seccomp_cache.py)
    assert len(list((rlx.runtime_dir / "rootless-cache").glob("seccomp-*"))) == 1
    conf = rlx.home / ".config/containers/containers.conf"
    conf.write_text('[containers]\nseccomp_profile = "unconfined"\n')  # podman's setting, read as podman reads it
    chown_tree(conf, rlx.user)
    assert run_base(rlx, images_dir, "localhost/base:1", "grep", "Seccomp:", "/proc/self/status").stdout == "Seccomp:\t0\n"
    conf.unlink()
    assert leftovers(rlx) == []


@needs_profile
def test_cap_add_sys_admin_changes_the_profile(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    result = run_base(rlx, images_dir, "--cap-add", "SYS_ADMIN", "localhost/base:1", "sh", "-c",
                      f"{NESTED_HOSTNAME}; hostname direct && hostname")
    assert result.stdout == "nested-ok\ndirect\n", result.stderr
    assert run_base(rlx, images_dir, "localhost/base:1", "sh", "-c", "hostname direct", check=False).returncode != 0


@needs_profile
def test_the_host_sandbox_gets_the_profile_too(rlx: Rlx) -> None:  # noqa: F811
    work = Path(tempfile.mkdtemp(prefix="rlx-sec-", dir="/tmp"))
    try:
        chown_tree(work, rlx.user)
        seen = {}
        for flags in ((), ("--security-opt", "seccomp=unconfined")):
            argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "run", "--rm", "--network", "none",
                                         *flags, "host", "sh", "-c", f"grep Seccomp: /proc/self/status; {NESTED_HOSTNAME}"])
            seen[flags] = subprocess.run(argv, capture_output=True, text=True, env=rlx.env, cwd=work, timeout=60)
        assert seen[()].stdout == "Seccomp:\t2\n", seen[()].stderr
        assert seen[("--security-opt", "seccomp=unconfined")].stdout == "Seccomp:\t0\nnested-ok\n"
    finally:
        shutil.rmtree(work)


def test_a_file_in_either_format(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    """A containers-format file is made for the container's capabilities and architecture; an
    OCI LinuxSeccomp is used as it is."""
    containers = rlx.home / "containers.json"
    containers.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [],
                      "comment": "", "includes": {}, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}))
    oci = rlx.home / "oci.json"
    oci_profile = {"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    oci.write_text(json.dumps(oci_profile))
    chown_tree(rlx.home, rlx.user)
    mkdir = "mkdir /tmp/d && echo made"
    refused = run_base(rlx, images_dir, "--security-opt", f"seccomp={containers}", "localhost/base:1", "sh", "-c",
                       mkdir, check=False)
    assert "Permission denied" in refused.stderr and refused.stdout == "", "errnoRet 13: EACCES"
    allowed = run_base(rlx, images_dir, "--security-opt", f"seccomp={containers}", "--cap-add", "SYS_ADMIN",
                       "localhost/base:1", "sh", "-c", mkdir)
    assert allowed.stdout == "made\n", "the group excludes CAP_SYS_ADMIN"
    rlx.run("run", "--name", "kept", "--network", "none", "--security-opt", f"seccomp={containers}",
            "localhost/base:1", "true")
    made = kept_config(rlx, "kept")["linux"]["seccomp"]
    native = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}
    if os.uname().machine in native:
        assert made["architectures"] == native[os.uname().machine]
    assert made["syscalls"] == [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    rlx.run("run", "--name", "oci", "--network", "none", "--security-opt", f"seccomp={oci}", "localhost/base:1", "true")
    assert kept_config(rlx, "oci")["linux"]["seccomp"] == oci_profile
    oci_refused = run_base(rlx, images_dir, "--security-opt", f"seccomp={oci}", "localhost/base:1", "sh", "-c", mkdir,
                           check=False)
    assert "Operation not permitted" in oci_refused.stderr
    rlx.run("rm", "kept", "oci")


# -- the same profile as podman ------------------------------------------------------------------

RUNC = shutil.which("runc") or "/usr/sbin/runc"


def podman_config(user: User, home: Path, tar: Path, *flags: str) -> dict:
    """config.json podman (its own containers.conf and seccomp.json, as a user gets them) writes
    for `podman create --network none FLAGS IMAGE true`, run by runc."""
    env = clean_env(user, {"HOME": str(home)})
    runroot = user.runtime_dir / f"rlxsec-{os.getpid()}"  # podman refuses a runroot over 50 characters
    base = ["podman", "--root", str(home / "storage"), "--runroot", str(runroot), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--runtime", RUNC]

    def podman(*args: str) -> str:
        result = subprocess.run(command_as(user, [*base, *args]), capture_output=True, text=True, env=env, cwd=home,
                                timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout.strip()
    try:
        podman("import", str(tar), "localhost/rlxsec")
        cid = podman("create", "--network", "none", *flags, "localhost/rlxsec", "true")
        try:
            podman("init", cid)  # config.json is written when the runtime creates
            return json.loads((Path(podman("inspect", "--format", "{{.StaticDir}}", cid)) / "config.json").read_text())
        finally:
            podman("rm", "--force", "--time", "0", cid)  # and its conmon
    finally:
        subprocess.run(command_as(user, ["podman", "unshare", "rm", "-rf", str(home / "storage"), str(runroot)]),
                       env=env, capture_output=True, cwd=home)


@needs_profile
@pytest.mark.skipif(shutil.which("podman") is None or not os.path.exists(RUNC), reason="podman or runc is missing")
@pytest.mark.parametrize("flags", [(), ("--cap-add", "SYS_ADMIN"), ("--cap-drop", "ALL")],
                         ids=["default", "sys-admin", "no-caps"])
def test_the_profile_is_podmans_for_the_same_container(rlx: Rlx, images_dir: Path, busybox_rootfs_tar: Path,  # noqa: F811
                                                       flags: tuple[str, ...]) -> None:
    home = Path(tempfile.mkdtemp(prefix="podman-sec-", dir=rlx.home))
    shutil.copy(busybox_rootfs_tar, home / "rootfs.tar")
    chown_tree(home, rlx.user)
    podman = podman_config(rlx.user, home, home / "rootfs.tar", *flags)
    run_base(rlx, images_dir, "localhost/base:1", "true")
    rlx.run("run", "--name", "same", "--network", "none", *flags, "localhost/base:1", "true")
    mine = kept_config(rlx, "same")
    assert (sorted(mine["process"]["capabilities"]["bounding"])
            == sorted(podman["process"]["capabilities"].get("bounding", []))), "the same capabilities (Go omits none)"
    assert mine["linux"]["seccomp"] == podman["linux"]["seccomp"]
    assert json.dumps(mine["linux"]["seccomp"]) == json.dumps(podman["linux"]["seccomp"]), "in podman's order too"
    rlx.run("rm", "same")
