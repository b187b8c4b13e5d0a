"""What the systemd tier's tests share: the runtime under test with the systemd cgroup driver,
the container's cgroup as the host sees it, the user's systemd manager, podman, and the marks
that say which rootless tests wait for issue 11.

Every call may be 50-90 times slower here than on the host (qemu without KVM): timeouts are
generous and containers few."""

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from helpers.bundle import make_config
from helpers.runtime import Runtime, wait_until  # noqa: F401 (the tier's tests import it from here)
from helpers.users import User, clean_env

CGROUP_ROOT = Path("/sys/fs/cgroup")
SLICE = "user.slice"
PREFIX = "rootless"  # the scope of container ID is rootless-ID.scope
TIMEOUT = 300
DELEGATED = {"cpu", "cpuset", "io", "memory", "pids"}

# runc is the baseline; rootless must behave as it does.
BOTH = ["runc", "rootless"]
# A container init that counts, five times a second, into /out/count (for pause and resume).
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /out/count.new; mv /out/count.new /out/count; sleep 0.2; done"


def user_manager_cgroup(uid: int) -> Path:
    return CGROUP_ROOT / f"user.slice/user-{uid}.slice/user@{uid}.service"


def scope_name(container_id: str) -> str:
    return f"{PREFIX}-{container_id}.scope"


def expected_scope(uid: int, container_id: str) -> Path:
    """Where the systemd driver puts a container whose cgroupsPath is user.slice:rootless:ID."""
    return user_manager_cgroup(uid) / SLICE / scope_name(container_id)


def cgroup_of(pid: int | str) -> Path:
    """The cgroup v2 folder of a process, from /proc/PID/cgroup ("0::/path")."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return CGROUP_ROOT / line[3:].lstrip("/")
    raise AssertionError(f"/proc/{pid}/cgroup has no cgroup v2 line")


def read(path: Path) -> str:
    return path.read_text().strip()


def keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (memory.events, pids.events, cpu.stat) as a dict."""
    return {key: int(value) for key, value in (line.split() for line in path.read_text().splitlines())}


def systemctl_user(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=TIMEOUT)


def counter(out: Path) -> int:
    """What COUNTER last wrote into the folder `out` (0 before its first count)."""
    path = out / "count"
    return int(path.read_text().strip() or 0) if path.exists() else 0


def weight_from_shares(shares: int) -> int:
    """runc's (and crun's documented) cpu.shares -> cpu.weight conversion."""
    return 0 if shares == 0 else 1 + ((shares - 2) * 9999) // 262142


class VmRuntime:
    """runc or rootless as the VM's user, through a helpers.runtime.Runtime (its run, state
    and cleanup), with bundles for the systemd driver (cgroupsPath user.slice:rootless:ID)."""

    def __init__(self, name: str, runtime: Runtime):
        self.name, self.rt = name, runtime
        self.user: User = runtime.user

    def new_id(self) -> str:
        return self.rt.new_id("vm")

    def out_dir(self) -> Path:
        """A folder the container sees at /out (its root is the user, under either runtime)."""
        out = Path(tempfile.mkdtemp(prefix="out-", dir=self.rt.work_dir))
        os.chmod(out, 0o777)
        return out

    def bundle(self, args: list[str], container_id: str, *, resources: dict | None = None, systemd: bool = True,
               out: Path | None = None, extra_mounts: list[dict] = (), **overrides: Any) -> Path:
        mounts = make_config([], rootless=True)["mounts"] + list(extra_mounts)
        if out is not None:
            mounts.append({"destination": "/out", "type": "bind", "source": str(out), "options": ["bind"]})
        linux: dict[str, Any] = overrides.pop("linux", {})
        if systemd:
            linux["cgroupsPath"] = f"{SLICE}:{PREFIX}:{container_id}"
        if resources:
            linux["resources"] = resources
        if self.name == "runc":  # as `runc spec --rootless`: runc maps only the caller
            linux["uidMappings"] = [{"containerID": 0, "hostID": self.user.uid, "size": 1}]
            linux["gidMappings"] = [{"containerID": 0, "hostID": self.user.gid, "size": 1}]
        return self.rt.bundle(args, mounts=mounts, linux=linux, **overrides)

    def run(self, *args: str, systemd: bool = True, check: bool = True, timeout: float = TIMEOUT,
            **kwargs: Any) -> subprocess.CompletedProcess:
        """The runtime with `args`; --systemd-cgroup first (runc records it for later verbs, and
        podman passes it to create only)."""
        flags = ("--systemd-cgroup",) if systemd and args and args[0] in ("create", "run") else ()
        return self.rt.run(*flags, *args, check=check, timeout=timeout, **kwargs)

    def create(self, args: list[str], resources: dict) -> tuple[str, Path]:
        """A created container under the systemd driver: (id, its scope)."""
        container_id = self.new_id()
        bundle = self.bundle(args, container_id, resources=resources)
        self.run("create", "--bundle", str(bundle), container_id)
        return container_id, self.cgroup(container_id)

    def start_detached(self, script: str, *, resources: dict | None = None, out: Path | None = None,
                       systemd: bool = True) -> str:
        """A running container (`run -d`) whose init runs `sh -c script`; its id."""
        container_id = self.new_id()
        bundle = self.bundle(["sh", "-c", script], container_id, resources=resources, out=out, systemd=systemd)
        self.run("run", "--detach", "--bundle", str(bundle), container_id, systemd=systemd)
        return container_id

    def pid(self, container_id: str) -> int:
        return self.rt.state(container_id)["pid"]

    def status(self, container_id: str) -> str:
        return self.rt.state(container_id)["status"]

    def cgroup(self, container_id: str) -> Path:
        """The container's cgroup, checked to be its own scope below the user's manager."""
        path = cgroup_of(self.pid(container_id))
        assert path == expected_scope(self.user.uid, container_id), path
        return path

    def popen(self, *args: str, stdout: Any) -> subprocess.Popen:
        return self.rt.popen(*args, stdout=stdout, stderr=subprocess.STDOUT)

    def argv(self, *args: str) -> list[str]:
        return self.rt.command(*args)

    def cleanup(self) -> list[str]:
        return self.rt.cleanup()


class Podman:
    """podman as the user (or root) with one runtime, its default cgroup manager (systemd) and a
    storage shared by the tests of a module (the busybox image imported once)."""

    IMAGE = "localhost/rootless-vmtier-busybox"

    def __init__(self, user: User, runtime_bin: str, home: Path):
        self.user, self.runtime_bin, self.home = user, runtime_bin, home
        conf = home / "containers.conf"
        conf.write_text('[engine]\nruntime_supports_json = ["crun", "runc", "kata", "runsc", "rootless"]\n'
                        'events_logger = "file"\n[containers]\nlog_driver = "k8s-file"\n')
        extra = {"CONTAINERS_CONF": str(conf)}
        if not user.is_root:
            extra["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={user.runtime_dir}/bus"
        self.env = clean_env(user, extra)
        runroot = Path(user.runtime_dir) / "vmtier-podman"  # podman wants a short runroot
        runroot.mkdir(mode=0o700, exist_ok=True)
        self.base = ["podman", "--root", str(home / "storage"), "--runroot", str(runroot),
                     "--storage-driver", "vfs", "--runtime", runtime_bin]
        if not (home / "imported").exists():
            self("import", str(home / "rootfs.tar"), self.IMAGE, check=True)
            (home / "imported").touch()

    def __call__(self, *args: str, timeout: float = TIMEOUT, check: bool = False) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout,
                                env=self.env, cwd=self.home, stdin=subprocess.DEVNULL)
        if check:
            assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result

    def inspect(self, name: str, template: str) -> str:
        return self("inspect", "--format", template, name, check=True).stdout.strip()

    def stats(self, name: str) -> dict:
        listed = json.loads(self("stats", "--no-stream", "--format", "json", name, check=True).stdout)
        return listed[0]
