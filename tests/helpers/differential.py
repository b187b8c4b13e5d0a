"""One side of a differential comparison: a runtime (runc or rootless) run as the test user,
and the functions that turn what a client and a container saw into comparable data.

An observation is a dict of plain values (exit status, normalized stdout, whether stderr was
empty, the container's own report split into sections). Two sides are compared key by key;
anything that differs by nature (container IDs, PIDs, bundle paths, timestamps, inode numbers)
is normalized away first, and nothing else.
"""

import array
import difflib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from helpers.bundle import make_bundle, make_config
from helpers.runtime import Runtime
from helpers.terminal import HeldTerminal
from helpers.users import chown_tree

# What the container reports about itself, in sections that compare one by one. Every
# command reads its own /proc/self, which has the shell's credentials and limits.
PROBE = r"""
echo '## status'; grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp|Cap(Inh|Prm|Eff|Bnd|Amb)):' /proc/self/status
echo '## maps'; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups
echo '## mounts'; cat /proc/self/mountinfo
echo '## fds'; for f in /proc/$$/fd/*; do echo "${f##*/} $(readlink $f)"; done
echo '## env'; env
echo '## umask'; umask
echo '## limits'; cat /proc/self/limits
echo '## cwd'; pwd
echo '## names'; hostname; cat /proc/sys/kernel/domainname
echo '## proc'; echo pid=$$; cat /proc/self/oom_score_adj; cat /proc/self/personality 2>&1
echo '## tty'; if [ -t 0 ]; then stty -a; tty; else echo no-tty; fi
"""
PROBE_ARGS = ["sh", "-c", PROBE]
READY = b"ready-for-input"
SECTION = re.compile(r"^## (\w+)$", re.M)


def reduce_mountinfo(text: str) -> str:
    """mountinfo reduced to what the container's layout is: destination, per-mount options,
    type and superblock options (no IDs, device numbers or sources, which name host paths)."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 6:
            rows.append(line)
            continue
        tail = line.split(" - ", 1)[1].split()
        fstype, superopts = tail[0], tail[2] if len(tail) > 2 else ""
        # Device numbers of shared mounts (dev=, cgroup paths) name host objects.
        superopts = re.sub(r"\b(dev|inode64|nr_inodes)=[^,]*", r"\1=N", superopts)
        rows.append(f"{fields[4]} {fields[5]} {fstype} {superopts}")
    return "\n".join(rows)


def normalize_text(text: str, names: dict[str, str]) -> str:
    """Replace each name (container ID, bundle path) by its placeholder; inode numbers and
    deleted host temp files by fixed text."""
    for value, placeholder in sorted(names.items(), key=lambda item: -len(item[0])):
        if value:
            text = text.replace(value, placeholder)
    text = re.sub(r"(pipe|socket|anon_inode:\[?\w*\]?|net|mnt):\[\d+\]", r"\1:[N]", text)
    text = re.sub(r"/tmp/#\d+ \(deleted\)", "<host-file>", text)
    return text


def parse_probe(stdout: str) -> dict[str, str]:
    """The probe's output as {section: text}; text outside sections goes under 'other'."""
    parts = SECTION.split(stdout)
    sections = {"other": parts[0].strip()} if parts[0].strip() else {}
    for name, body in zip(parts[1::2], parts[2::2]):
        sections[name] = body.strip("\n")
    if "mounts" in sections:
        # Compared as a set; the order of mounts is a section of its own.
        sections["mount_order"] = reduce_mountinfo(sections["mounts"])
        sections["mounts"] = "\n".join(sorted(sections["mount_order"].splitlines()))
    return sections


class ConsoleSocket:
    """A console socket that takes one pty master (SCM_RIGHTS) and collects its output."""

    def __init__(self, folder: Path, owner: tuple[int, int], typed: bytes = b""):
        self.path = folder / "console.sock"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        os.chown(self.path, *owner)
        self.server.listen(1)
        self.server.settimeout(30)
        self.output, self.typed = b"", typed
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        fds = array.array("i")
        _, ancillary, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
        conn.close()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if not fds:
            return
        if self.typed:
            os.write(fds[0], self.typed)
        while True:
            try:
                chunk = os.read(fds[0], 4096)
            except OSError:  # EIO: the container side closed
                break
            if not chunk:
                break
            self.output += chunk
        os.close(fds[0])

    def wait(self, timeout: float = 20) -> bytes:
        self.thread.join(timeout)
        self.server.close()
        return self.output


class Side:
    """One runtime binary as the test user, with the bundles of one batch of cases.

    name      "runc" or "rootless"
    runtime   helpers.runtime.Runtime for the test user, its binary set to this side's
    """

    def __init__(self, name: str, runtime: Runtime):
        self.name, self.runtime = name, runtime
        self.user = runtime.user
        self._count = 0

    # -- bundles ---------------------------------------------------------------------------
    def base_config(self, args: list[str], terminal: bool = False) -> dict:
        """`runc spec --rootless` with `args`: the caller mapped to root, as runc needs (as
        root: `runc spec`); both sides get the same config."""
        if not self.runtime.rootless:
            return make_config(args, rootless=False, terminal=terminal)
        maps = {"uidMappings": [{"containerID": 0, "hostID": self.user.uid, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": self.user.gid, "size": 1}]}
        return make_config(args, rootless=True, terminal=terminal, linux=maps)

    def bundle(self, config: dict, private_rootfs: bool = False, prepare=None) -> Path:
        self._count += 1
        folder = self.runtime.work_dir / f"b{self._count}"
        folder.mkdir(mode=0o755)
        rootfs = self.runtime.rootfs
        if private_rootfs:  # for cases that write into the rootfs (runc may create cwd, mount points)
            rootfs = folder / "rootfs"
            shutil.copytree(self.runtime.rootfs, rootfs, symlinks=True)
            if prepare is not None:
                prepare(rootfs)
        chown_tree(folder, self.user)
        path = make_bundle(folder, config, rootfs)
        if config.get("root", {}).get("path") not in (None, "rootfs"):
            # a case that names its own root path keeps it
            data = json.loads((path / "config.json").read_text())
            data["root"]["path"] = config["root"]["path"]
            (path / "config.json").write_text(json.dumps(data))
        return path

    def new_id(self) -> str:
        return Runtime.new_id("d")

    # -- running ---------------------------------------------------------------------------
    def run(self, *args: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        return self.runtime.run(*map(str, args), **kwargs)

    def run_with_stdout(self, stdout, *args: Any, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the runtime with `stdout` (an open file) as its stdout: a created container
        keeps it, so its output lands there after `start`."""
        with tempfile.TemporaryFile() as err:
            proc = subprocess.run(self.runtime.command(*map(str, args)), stdin=subprocess.DEVNULL, stdout=stdout,
                                  stderr=err, timeout=timeout, env=self.runtime._env(None), cwd=self.runtime.work_dir)
            err.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, "", err.read().decode(errors="replace"))

    def run_in_terminal(self, *args: Any, typed: bytes = b"", timeout: float = 30) -> tuple[int, bytes]:
        """Run the runtime with a terminal of ours as stdin/stdout/stderr (a pty the test holds);
        returns the exit status and every byte the terminal received. `typed` is written once
        the container printed READY."""
        terminal = HeldTerminal(24, 80)
        proc = subprocess.Popen(self.runtime.command(*map(str, args)), stdin=terminal.slave, stdout=terminal.slave,
                                stderr=terminal.slave, env=self.runtime._env(None), cwd=self.runtime.work_dir,
                                start_new_session=True)
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            if typed and READY in seen:  # the container reads only after it said so
                os.write(terminal.master, typed)
                typed = b""
            # Read until the runtime exited and the terminal has nothing more to give.
            ready, _, _ = select.select([terminal.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(terminal.master, 4096)
                except OSError:
                    chunk = b""
                seen += chunk
                if chunk:
                    continue
            if proc.poll() is not None and not ready:
                break
        if proc.poll() is None:
            proc.kill()
        status = proc.wait(timeout=5)
        terminal.close()
        return status, seen

    def console_socket(self, typed: bytes = b"") -> ConsoleSocket:
        # sun_path holds 108 bytes: a short folder of the test user's own.
        folder = Path(tempfile.mkdtemp(prefix="dcons-", dir="/tmp"))
        os.chown(folder, self.user.uid, self.user.gid)
        return ConsoleSocket(folder, (self.user.uid, self.user.gid), typed)

    def wait_stopped(self, container_id: str, timeout: float = 10) -> None:
        self.runtime.wait_for_status(container_id, "stopped", timeout)

    def cleanup_container(self, container_id: str) -> None:
        self.runtime.run("delete", "-f", container_id)


def compare(runc: dict, rootless: dict) -> list[str]:
    """The keys whose values differ, each as a short report line (empty when identical).
    Keys that start with "_" (stderr text) are not compared but shown when something differs."""
    lines = []
    for key in sorted(set(runc) | set(rootless), key=str):
        if key.startswith("_"):
            continue
        a, b = runc.get(key, "<missing>"), rootless.get(key, "<missing>")
        if a == b:
            continue
        if isinstance(a, str) and isinstance(b, str) and "\n" in a + b:
            # split on \n only: a \r (a terminal's ONLCR) stays visible
            lines_of = lambda text: [repr(line)[1:-1] for line in text.split("\n")]
            diff = difflib.unified_diff(lines_of(a), lines_of(b), "runc", "rootless", lineterm="", n=1)
            lines.append(f"{key}:\n    " + "\n    ".join(diff))
        else:
            lines.append(f"{key}:\n    runc:     {a!r}\n    rootless: {b!r}")
    if lines:
        for key in sorted(k for k in set(runc) | set(rootless) if k.startswith("_")):
            lines.append(f"({key[1:]}: runc {runc.get(key, '')!r}; rootless {rootless.get(key, '')!r})")
    return lines
