"""What a container may leave behind on the host: processes, its state directory, mounts."""

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def _pids() -> list[int]:
    return sorted(int(name) for name in os.listdir(PROC) if name.isdigit())


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _real_uid(pid: int) -> int | None:
    for line in _read(PROC / str(pid) / "status").splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return None


def _cmdline(pid: int) -> str:
    return _read(PROC / str(pid) / "cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def processes_of(uid: int | range) -> list[tuple[int, str]]:
    """(pid, cmdline) of every process whose real UID is `uid` (or in the range)."""
    uids = uid if isinstance(uid, range) else range(uid, uid + 1)
    found = []
    for pid in _pids():
        owner = _real_uid(pid)
        if owner is not None and owner in uids:
            found.append((pid, _cmdline(pid)))
    return found


def _ancestors() -> set[int]:
    """This process and its parents, whose command lines may name anything."""
    pids, pid = set(), os.getpid()
    while pid > 0 and pid not in pids:
        pids.add(pid)
        fields = _read(PROC / str(pid) / "stat").rsplit(b")", 1)
        pid = int(fields[1].split()[1]) if len(fields) == 2 else 0
    return pids


def processes_mentioning(*needles: str) -> list[tuple[int, str]]:
    """(pid, cmdline) of processes whose command line or environment contains any needle
    (other than this process and its ancestors). Environments of other users' processes are
    readable only as root."""
    wanted = [n.encode() for n in needles if n]
    skip = _ancestors()
    found = []
    for pid in _pids():
        if pid in skip:
            continue
        text = _read(PROC / str(pid) / "cmdline") + b"\0" + _read(PROC / str(pid) / "environ")
        if any(n in text for n in wanted):
            found.append((pid, _cmdline(pid)))
    return found


def mounts_under(path: Path, mountinfo: Path = PROC / "self" / "mountinfo") -> list[str]:
    """Mount points at or below `path` in this process's mount namespace."""
    prefix = str(Path(path).absolute()).rstrip("/")
    points = []
    for line in _read(mountinfo).decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")  # \040 and the like
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return points


def _alive(pid: int) -> bool:
    stat = _read(PROC / str(pid) / "stat").rsplit(b")", 1)
    return len(stat) == 2 and stat[1].split()[0] != b"Z"


def find_leaks(container_id: str, *, state_dir: Path | None = None, bundle: Path | None = None,
               pids: Iterable[int] = ()) -> list[str]:
    """Everything of a container still there, one line each (empty when clean)."""
    leaks = [f"process {pid} mentions the container: {cmd}"
             for pid, cmd in processes_mentioning(container_id, *([str(state_dir)] if state_dir else []))]
    leaks += [f"process {pid} of the container is alive: {_cmdline(pid)}" for pid in pids if _alive(pid)]
    if state_dir is not None and Path(state_dir).exists():
        leaks.append(f"state directory {state_dir} exists")
    if bundle is not None:
        leaks += [f"mount {point} under the bundle" for point in mounts_under(bundle)]
    return leaks


def assert_no_leaks(container_id: str, *, state_dir: Path | None = None, bundle: Path | None = None,
                    pids: Iterable[int] = ()) -> None:
    """Fail if a process names the container id or state dir in its command line or
    environment, if any of `pids` (say, the init's PID from `state`) still runs, if the state
    directory exists, or if anything is mounted under the bundle."""
    leaks = find_leaks(container_id, state_dir=state_dir, bundle=bundle, pids=pids)
    assert not leaks, f"container {container_id} left behind:\n  " + "\n  ".join(leaks)


CGROUP_V2 = Path("/sys/fs/cgroup")


def own_cgroup(pid: int, mount: Path = CGROUP_V2) -> Path | None:
    """The cgroup v2 folder of a running process, if the host mounts cgroup v2 there."""
    try:
        for line in (PROC / str(pid) / "cgroup").read_text().splitlines():
            if line.startswith("0::") and (mount / "cgroup.controllers").exists():
                return mount / line[3:].lstrip("/")
    except OSError:
        pass
    return None


class CgroupCounter:
    """The cgroup leak counter: a container whose init sits in a cgroup named for it (a scope
    `PREFIX-ID.scope` or a directory `ID`) is counted as checked; after its delete, that cgroup
    and any other folder of the cgroup v2 tree naming its id must be gone. Where the host
    delegates nothing (cgroup v1, hybrid), no container has a cgroup of its own and the counter
    checks nothing: summary() says so, and a test must not pass on it as if it had looked."""

    def __init__(self, mount: Path = CGROUP_V2):
        self.mount, self.seen, self.ids = mount, {}, []

    def note(self, container_id: str, pid: int) -> None:
        """While the container runs: where its init is."""
        self.ids.append(container_id)
        path = own_cgroup(pid, self.mount)
        if path is not None and (path.name == container_id or path.name.endswith(f"-{container_id}.scope")):
            self.seen[container_id] = path

    def left(self) -> list[str]:
        """Cgroups left by the containers noted: each one seen, and a walk of the tree for
        folders naming a noted id (one made and never joined)."""
        found = {str(p) for p in self.seen.values() if p.exists()}
        if (self.mount / "cgroup.controllers").exists() and self.ids:
            for folder, dirs, _files in os.walk(self.mount):
                for name in dirs:
                    if any(name == i or name.endswith(f"-{i}.scope") for i in self.ids):
                        found.add(os.path.join(folder, name))
        return sorted(found)

    @property
    def checked(self) -> int:
        return len(self.seen)

    def summary(self) -> str:
        if not self.checked:
            return (f"cgroups: checked nothing (none of {len(self.ids)} containers had a cgroup of its own: "
                    "this host delegates no cgroup v2 controllers)")
        return f"cgroups: {self.checked} checked, {len(self.left())} left"
