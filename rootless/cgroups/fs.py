"""A cgroup v2 directory, read and written through its files: the cgroupfs driver, and what the
systemd driver does inside the scope systemd delegated. Every function takes the directory's
path, so unit tests run against a temporary tree that looks like cgroupfs.

The no-internal-process rule: a non-root cgroup that has processes cannot enable controllers
for its children (cgroup.subtree_control answers EBUSY). make() enables on the way down, from
the deepest existing ancestor, only what each cgroup lets it; it never moves the caller's processes around to make room (they
are not the runtime's to move). A controller that cannot be enabled is simply absent from the
container's cgroup, and the limits that need it are reported as not applied. The one exception,
make_room(): when the only processes in the way are the runtime's own (a systemd service with
Delegate=yes whose ExecStart is `rootless run`), they step into a leaf of their own.
"""

import errno
import os
import time

from rootless.errors import RootlessError

CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")

# The calls that change the tree, as names a test double replaces (tests/unit/fake_cgroupfs.py
# gives a temporary directory cgroupfs's semantics: files of a new cgroup, subtree_control's
# rules, freezing).
mkdir = os.mkdir
rmdir = os.rmdir


def _error(action: str, path: str, err: OSError) -> RootlessError:
    return RootlessError(f"{action} `{path}`: {err.strerror or err}")


def read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as f:
        return f.read()


def write(path: str, name: str, value: str) -> None:
    target = os.path.join(path, name)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise RootlessError(f"write {value!r} to `{target}`: {err.strerror or err}") from None


def controllers(path: str, name: str = "cgroup.controllers") -> set[str]:
    try:
        return set(read(path, name).split())
    except OSError:
        return set()


def _enable(path: str, wanted: set[str]) -> None:
    """Enable what `path` offers of `wanted` for its children; what the kernel refuses (EBUSY:
    processes of its own; EACCES: not delegated; ENOENT: not offered) stays off."""
    missing = (controllers(path) & wanted) - controllers(path, "cgroup.subtree_control")
    if not missing:
        return
    try:
        write(path, "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(missing)))
        return
    except RootlessError:
        pass
    for controller in sorted(missing):  # one refusal must not cost the others
        try:
            write(path, "cgroup.subtree_control", f"+{controller}")
        except RootlessError:
            pass


# Where make_room() puts the runtime's own processes: not a valid container id (a ':'), so no
# container's cgroup can take the name.
RUNTIME_LEAF = "rootless:runtime"


def make_room(path: str, ours: set[int], wanted: set[str]) -> str | None:
    """Let `path` enable `wanted` for its children when what holds it back is the runtime itself.

    systemd starts a service's ExecStart in the service's own cgroup (systemd 252 has no
    DelegateSubgroup=), so `rootless run` in a unit with Delegate=yes finds itself, and the
    namespace stage it forked, in the cgroup the container's goes below. When every process of
    `path` is in `ours`, they move to path/RUNTIME_LEAF (podman's "split" shape) and the
    controllers can be enabled; a cgroup holding anyone else's process is left as it is.
    The leaf stays until its parent goes (systemd removes a stopped service's cgroup with
    everything below it). Returns the leaf, or None when nothing moved."""
    if not (controllers(path) & wanted) - controllers(path, "cgroup.subtree_control"):
        return None
    try:
        present = {int(pid) for pid in read(path, "cgroup.procs").split()}
    except (OSError, ValueError):
        return None
    if not present or not present <= ours:
        return None
    leaf = os.path.join(path, RUNTIME_LEAF)
    try:
        mkdir(leaf, 0o755)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        for pid in sorted(present):
            write(leaf, "cgroup.procs", str(pid))
    except RootlessError:
        return None  # make() then enables what it can, as without this step
    return leaf


def make(mount: str, relative: str, wanted: set[str]) -> tuple[str, list[str]]:
    """Create MOUNT/relative (and missing parents), enabling `wanted` controllers on the way
    down from the deepest existing ancestor (the cgroup delegated to us, or where cgroupsPath
    goes): nothing above it is written. Returns (path, directories created, top first), so a
    failed create removes exactly those."""
    parts = [p for p in relative.split("/") if p]
    created: list[str] = []
    path = mount
    try:
        for index, part in enumerate(parts):
            below = os.path.join(path, part)
            if not os.path.isdir(below):
                _enable(path, wanted)  # from the deepest existing ancestor down: ours, not above
            path = below
            try:
                mkdir(path, 0o755)
                created.append(path)
            except FileExistsError:
                if index == len(parts) - 1:
                    raise RootlessError(f"the cgroup `{path}` already exists: another container uses this "
                                        "cgroupsPath, or a failed one left it (rmdir it when it is empty)") from None
    except OSError as err:
        remove_dirs(created)
        raise _error("mkdir", path, err) from None
    except RootlessError:
        remove_dirs(created)
        raise
    return path, created


def remove_dirs(created: list[str]) -> None:
    for path in reversed(created):
        try:
            rmdir(path)
        except OSError:
            pass


def apply(path: str, writes) -> list[str]:
    """Write the limits; returns the OCI names of the writes whose file this cgroup does not
    have (its controller is not enabled here). Any other failure is an error naming the file."""
    not_applied: list[str] = []
    for w in writes:
        file, value = w.file, w.value
        if not os.path.exists(os.path.join(path, file)) and w.fallback:
            file, value = w.fallback
        if not os.path.exists(os.path.join(path, file)):
            not_applied += [n for n in w.names if n not in not_applied]
            continue
        write(path, file, value)
    return not_applied


def add_process(path: str, pid: int) -> None:
    write(path, "cgroup.procs", str(pid))


def procs(path: str) -> list[int]:
    """Every PID in the cgroup and below it (a container may make cgroups of its own)."""
    found: list[int] = []
    for directory, _subdirs, _files in os.walk(path):
        try:
            found += [int(line) for line in read(directory, "cgroup.procs").split()]
        except (OSError, ValueError):
            continue
    return found


def events(path: str, name: str = "cgroup.events") -> dict[str, int]:
    """A flat-keyed file (cgroup.events, memory.events, pids.events) as a dict."""
    result = {}
    try:
        for line in read(path, name).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                result[key] = int(value)
    except OSError:
        pass
    return result


def frozen(path: str) -> bool:
    try:
        return read(path, "cgroup.freeze").strip() == "1"
    except OSError:
        return False


def freeze(path: str, on: bool, timeout: float = 10.0) -> None:
    """Write cgroup.freeze and wait until cgroup.events says the whole subtree is (un)frozen:
    until then a process may still run (or still be stopped)."""
    write(path, "cgroup.freeze", "1" if on else "0")
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while events(path).get("frozen", int(on)) != int(on):
        if time.monotonic() > deadline:
            raise RootlessError(f"`{path}`: not {'frozen' if on else 'thawed'} after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def signal_all(path: str, signum: int) -> None:
    for pid in procs(path):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def kill_all(path: str, timeout: float = 10.0) -> None:
    """SIGKILL everything in the cgroup with no chance to escape by forking: freeze, kill
    (cgroup.kill where the kernel has it, 5.14, else each process), thaw so the signals are
    delivered. Waits until the cgroup is empty.

    The cgroup may vanish at any step: systemd collects a transient scope as soon as its
    last process is gone, which is what killing it achieves. A cgroup that is gone is empty."""
    try:
        freeze(path, True, timeout)
        if os.path.exists(os.path.join(path, "cgroup.kill")):
            write(path, "cgroup.kill", "1")
        else:
            signal_all(path, 9)
        freeze(path, False, timeout)
    except RootlessError:
        if os.path.isdir(path):
            raise
        return
    deadline = time.monotonic() + timeout
    while procs(path):
        if time.monotonic() > deadline:
            raise RootlessError(f"`{path}`: processes left after SIGKILL: {procs(path)}")
        time.sleep(0.005)


def remove(path: str, timeout: float = 5.0) -> None:
    """rmdir the cgroup and any the container made below it, deepest first. A cgroup whose last
    process just died may answer EBUSY for a moment."""
    deadline = time.monotonic() + timeout
    for directory, _subdirs, _files in sorted(os.walk(path, topdown=False), key=lambda e: -len(e[0])):
        while True:
            try:
                rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as err:
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise _error("rmdir", directory, err) from None
                time.sleep(0.01)
