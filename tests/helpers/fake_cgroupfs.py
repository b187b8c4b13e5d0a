"""A temporary directory with cgroupfs's semantics, for unit tests of the cgroupfs driver on
hosts where no cgroup v2 can be written (hybrid hosts: their controllers are bound to v1).

It replaces rootless.cgroups.fs's mkdir, rmdir and write (the calls that change the tree):
- mkdir makes the files a new cgroup has: cgroup.* and those of the controllers its parent
  enables in cgroup.subtree_control;
- cgroup.subtree_control takes "+c -c", refuses a controller the cgroup does not offer
  (ENOENT) and, below the root, any change while the cgroup has processes (EBUSY: the
  no-internal-process rule);
- cgroup.procs moves a PID (it leaves every other cgroup); cgroup.freeze sets cgroup.events'
  frozen; cgroup.kill empties the subtree;
- rmdir refuses a cgroup with processes (EBUSY) or children.
Reads are plain file reads, as on cgroupfs.
"""

import errno
import os
import shutil
from pathlib import Path

from rootless.cgroups import fs
from rootless.errors import RootlessError

CONTROLLER_FILES = {
    "memory": {"memory.max": "max", "memory.low": "0", "memory.swap.max": "max", "memory.current": "0",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "memory.stat": "anon 0\nfile 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
            "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "io": {"io.max": "", "io.weight": "default 100", "io.stat": ""},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.2MB.current": "0"},
}


class FakeCgroupfs:
    def __init__(self, root: Path, controllers=("cpu", "cpuset", "io", "memory", "pids")):
        self.root = root
        self.killed: list[int] = []
        root.mkdir(parents=True, exist_ok=True)
        self._files(root, list(controllers))

    def install(self, monkeypatch) -> "FakeCgroupfs":
        monkeypatch.setattr(fs, "mkdir", self.mkdir)
        monkeypatch.setattr(fs, "rmdir", self.rmdir)
        monkeypatch.setattr(fs, "write", self.write)
        return self

    @staticmethod
    def _files(path: Path, controllers: list[str]) -> None:
        (path / "cgroup.controllers").write_text(" ".join(controllers) + "\n")
        for name, text in (("cgroup.subtree_control", ""), ("cgroup.procs", ""), ("cgroup.freeze", "0\n"),
                           ("cgroup.events", "populated 0\nfrozen 0\n"), ("cgroup.kill", "")):
            (path / name).write_text(text)
        for controller in controllers:
            for name, text in CONTROLLER_FILES.get(controller, {}).items():
                (path / name).write_text(text + ("\n" if text and not text.endswith("\n") else ""))

    def cgroup(self, relative: str, procs: tuple[int, ...] = (), enabled: tuple[str, ...] = ()) -> Path:
        """Make an existing cgroup (and its parents) as the host would have it."""
        path = self.root
        for part in [p for p in relative.split("/") if p]:
            parent_enabled = (path / "cgroup.subtree_control").read_text().split()
            path = path / part
            if not path.exists():
                path.mkdir()
                self._files(path, parent_enabled)
        (path / "cgroup.subtree_control").write_text(" ".join(enabled) + "\n")
        (path / "cgroup.procs").write_text("".join(f"{p}\n" for p in procs))
        return path

    def mkdir(self, path, mode=0o777) -> None:
        os.mkdir(path, mode)
        parent = Path(path).parent
        self._files(Path(path), (parent / "cgroup.subtree_control").read_text().split())

    def rmdir(self, path) -> None:
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        if (path / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        if any(child.is_dir() for child in path.iterdir()):
            raise OSError(errno.ENOTEMPTY, "Directory not empty", str(path))
        shutil.rmtree(path)

    def _fail(self, path: Path, value: str, code: int) -> None:
        raise RootlessError(f"write {value!r} to `{path}`: {os.strerror(code)}")

    def write(self, path, name: str, value: str) -> None:
        cgroup = Path(path)
        target = cgroup / name
        if not target.exists():
            self._fail(target, value, errno.ENOENT)
        if name == "cgroup.subtree_control":
            offered = (cgroup / "cgroup.controllers").read_text().split()
            enabled = target.read_text().split()
            if cgroup != self.root and (cgroup / "cgroup.procs").read_text().split():
                self._fail(target, value, errno.EBUSY)
            for change in value.split():
                controller = change[1:]
                if controller not in offered:
                    self._fail(target, value, errno.ENOENT)
                if change[0] == "+" and controller not in enabled:
                    enabled.append(controller)
                elif change[0] == "-" and controller in enabled:
                    enabled.remove(controller)
            target.write_text(" ".join(enabled) + "\n")
        elif name == "cgroup.procs":
            pid = value.strip()
            for procs in self.root.rglob("cgroup.procs"):
                kept = [p for p in procs.read_text().split() if p != pid]
                procs.write_text("".join(f"{p}\n" for p in kept))
            target.write_text(target.read_text() + f"{pid}\n")
        elif name == "cgroup.freeze":
            target.write_text(value.strip() + "\n")
            events = cgroup / "cgroup.events"
            populated = "1" if (cgroup / "cgroup.procs").read_text().split() else "0"
            events.write_text(f"populated {populated}\nfrozen {value.strip()}\n")
        elif name == "cgroup.kill":
            for procs in cgroup.rglob("cgroup.procs"):
                self.killed += [int(p) for p in procs.read_text().split()]
                procs.write_text("")
        else:
            target.write_text(value + "\n")

    def read(self, relative: str, name: str) -> str:
        return (self.root / relative.lstrip("/") / name).read_text()
