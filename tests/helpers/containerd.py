"""A containerd of the tests' own, driven with `ctr` as Kubernetes' CRI handler drives a runtime.

Its config, root, state, sockets, the runtime's state root (`--runc-root`) and ctr's FIFOs all
live under one folder; the system's /etc/containerd, /var/lib/containerd and
/run/containerd/containerd.sock are never read or touched. containerd 1.6 still puts the shims'
sockets in /run/containerd/s (a fixed path in its shim code), named by a hash of our socket's
path, so they cannot collide with a system containerd's; each shim removes its own.

As root (a Kubernetes node's containerd), on a host whose v1 memory controller must not be
written to, it runs in a private mount namespace without that controller
(helpers.runtime.without_memory_cgroup): runc, as root, makes a memory cgroup per container
otherwise. Or in containerd's rootless mode, as an unprivileged user: in the user and mount
namespaces of RootlessKit (Debian 12's rootlesskit 1.1), set up as nerdctl's
`containerd-rootless.sh` does (Debian has no such script); ctr then runs inside those
namespaces too (it mounts the image's snapshot to read its /etc/passwd). Either way the shims,
and the container mounts they make, stay in that mount namespace and vanish with it.

Images come from the busybox rootfs as an OCI archive made here (helpers.images), imported with
`ctr image import`: nothing is pulled.
"""

import os
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from helpers.images import rootfs_layer, write_oci_layout
from helpers.runtime import _kill_processes_mentioning, remove_tree, without_memory_cgroup
from helpers.users import User, chown_tree, clean_env, command_as

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
ROOTLESSKIT = "/usr/bin/rootlesskit"
RUNTIME_TYPE = "io.containerd.runc.v2"  # the shim CRI's runc handlers use (runtime_type)
IMAGE = "localhost/busybox:latest"

CONFIG = """\
version = 2
root = "{folder}/root"
state = "{folder}/state"
{disabled}
{imports}
[grpc]
  address = "{folder}/containerd.sock"
[ttrpc]
  address = "{folder}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{folder}/opt"
"""


def write_config(folder: Path, imports: tuple[Path, ...] = (), cri: bool = False) -> Path:
    """A containerd config.toml that keeps everything under `folder` (plus `imports`, merged
    by containerd). Without `cri` the CRI plugin is off: it would set up pod networking and
    watch the system's CNI paths, and ctr needs none of it."""
    listed = "imports = [" + ", ".join(f'"{p}"' for p in imports) + "]" if imports else ""
    disabled = "" if cri else 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'
    path = folder / "config.toml"
    path.write_text(CONFIG.format(folder=folder, imports=listed, disabled=disabled))
    return path


class Containerd:
    """One containerd under `folder` (made by the caller, empty); start() it, stop() it.
    `as_root` prefixes every command when the tests do not run as root (["sudo", "-n"] in the
    VM tier); with `user`, containerd runs in its rootless mode as that user instead."""

    def __init__(self, folder: Path, as_root: tuple[str, ...] = (), user: User | None = None):
        self.folder = Path(folder)
        self.as_root = list(as_root)
        self.user = user
        self.socket = self.folder / "containerd.sock"
        self.runc_root = self.folder / "runc-root"
        self.fifo_dir = self.folder / "fifo"
        self.log_path = self.folder / "containerd.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        config = write_config(self.folder)
        if self.user is None:
            argv = self.as_root + without_memory_cgroup([CONTAINERD, "--config", str(config)])
        else:
            chown_tree(self.folder, self.user)
            # /run becomes a tmpfs of the namespace whose entries link to the host's; the link to
            # a root containerd's /run/containerd goes so the shims can make their own (the
            # host's stays).
            argv = command_as(self.user, [
                ROOTLESSKIT, "--net=host", "--copy-up=/run", f"--state-dir={self.folder / 'rootlesskit'}",
                "sh", "-c", 'rm -f /run/containerd && exec "$0" --config "$1"', CONTAINERD, str(config)])
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, env=self.env())
        deadline = time.monotonic() + timeout
        while not self._answers(probe_timeout=timeout / 3):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start (exit {self.proc.poll()}):\n{self.log()}")
            time.sleep(0.1)

    def _answers(self, probe_timeout: float) -> bool:
        """`ctr version` succeeds (in the VM tier, without KVM, one call took more than 10 s)."""
        try:
            return self.ready() and self.ctr("version", timeout=probe_timeout).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def env(self) -> dict[str, str] | None:
        return None if self.user is None else clean_env(self.user)

    def ready(self) -> bool:
        """RootlessKit's namespaces exist (always, as root)."""
        return self.user is None or (self.folder / "rootlesskit" / "child_pid").exists()

    def prefix(self) -> list[str]:
        """What runs a command as containerd's peer: as root, or as the user in RootlessKit's
        namespaces."""
        if self.user is None:
            return self.as_root
        child = (self.folder / "rootlesskit" / "child_pid").read_text().strip()
        return command_as(self.user, ["nsenter", "-U", "--preserve-credentials", "-m", "-t", child])

    def ctr_command(self, *args) -> list[str]:
        return [*self.prefix(), CTR, "--address", str(self.socket), *map(str, args)]

    def ctr(self, *args, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        """`ctr ARGS` against this containerd; stdout and stderr captured as text (through files:
        a detached task's shim must not hold a pipe of ours)."""
        return self.run(CTR, "--address", self.socket, *args, timeout=timeout, **kwargs)

    def run(self, *argv, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        """`argv` as containerd's peer (prefix()), captured as ctr() does."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kwargs.setdefault("stdin", subprocess.DEVNULL)
            proc = subprocess.run([*self.prefix(), *map(str, argv)], stdout=out, stderr=err, timeout=timeout,
                                  env=self.env(), **kwargs)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(errors="replace"),
                                               err.read().decode(errors="replace"))

    def runtime_flags(self, binary: str, systemd_cgroup: bool = False) -> list[str]:
        """The `ctr run` flags that give the runc shim what a CRI runtime handler's options do:
        its runtime_type, BinaryName (and SystemdCgroup), with state and FIFOs kept here."""
        flags = ["--runtime", RUNTIME_TYPE, "--runc-binary", binary, "--runc-root", str(self.runc_root),
                 "--fifo-dir", str(self.fifo_dir)]
        return flags + ["--runc-systemd-cgroup"] * systemd_cgroup

    def import_rootfs(self, rootfs: Path, name: str = IMAGE) -> str:
        """`rootfs` as a one-layer image named `name` (an OCI archive made here, imported)."""
        layout = self.folder / "image-layout"
        write_oci_layout(layout, [rootfs_layer(rootfs)], {"config": {"Cmd": ["/bin/sh"]}}, tag="latest")
        archive = self.folder / "image.tar"
        with tarfile.open(archive, "w") as tar:
            for entry in sorted(layout.iterdir()):
                tar.add(entry, arcname=entry.name)
        result = self.ctr("image", "import", "--base-name", name.rsplit(":", 1)[0], archive)
        if result.returncode != 0:
            raise RuntimeError(f"ctr image import: {result.stderr}")
        return name

    def tasks(self) -> dict[str, tuple[int, str]]:
        """`ctr task ls` as {task: (init PID, status)}, status as ctr prints it (RUNNING, ...)."""
        rows = (line.split() for line in self.ctr("task", "ls").stdout.splitlines()[1:])
        return {row[0]: (int(row[1]), row[2]) for row in rows if len(row) >= 3}

    def status(self, task: str) -> str:
        return self.tasks().get(task, (0, ""))[1]

    def remove_all(self) -> list[str]:
        """Kill and delete every task, remove every container. Returns what failed."""
        problems = []
        tasks = self.ctr("task", "ls", "-q").stdout.split()
        for task in tasks:
            self.ctr("task", "kill", "-s", "KILL", "--all", task)
        for task in tasks:
            deadline = time.monotonic() + 10
            while self.ctr("task", "delete", task).returncode != 0 and time.monotonic() < deadline:
                time.sleep(0.1)
        for container in self.ctr("container", "ls", "-q").stdout.split():
            result = self.ctr("container", "rm", container)
            if result.returncode != 0:
                problems.append(f"ctr container rm {container}: {result.stderr.strip()}")
        return problems

    def stop(self) -> list[str]:
        """Stop containerd (its shims and anything left under the folder too) and remove the
        folder. Returns what was wrong, for a warning."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            problems += self.remove_all()
            self.proc.send_signal(signal.SIGTERM)  # sudo passes it on
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                if self.as_root:  # containerd is sudo's child
                    self.run("pkill", "-KILL", "-P", self.proc.pid)
                self.proc.kill()
                self.proc.wait()
                problems.append("containerd did not exit on SIGTERM")
        if self.as_root:  # root's files: the caller cannot remove them
            self.run("rm", "-rf", "--one-file-system", self.folder)
            return problems
        problems += _kill_processes_mentioning(self.folder)
        problems += remove_tree(self.folder)
        return problems


def make_containerd(parent: Path, as_root: tuple[str, ...] = (), user: User | None = None) -> Containerd:
    folder = Path(tempfile.mkdtemp(prefix="containerd-", dir=parent))
    os.chmod(folder, 0o711)
    return Containerd(folder, as_root, user)


def running_containerd(parent: Path, rootfs: Path, as_root: tuple[str, ...] = (), user: User | None = None,
                       timeout: float = 30) -> Iterator[Containerd]:
    """For a fixture: a started containerd with `rootfs` imported as IMAGE; stopped after, and
    anything it left fails the fixture."""
    daemon = make_containerd(parent, as_root, user)
    try:
        daemon.start(timeout)
        daemon.import_rootfs(rootfs)
        yield daemon
    finally:
        problems = daemon.stop()
        assert not problems, problems
