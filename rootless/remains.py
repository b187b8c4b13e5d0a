"""`delete -f` of a container whose state.json is corrupt or gone: find what is left of it
without the record, kill it, remove the directory.

What identifies the container's processes then, in the order tried:
  - the init: the `init` symlink beside state.json ("PID START", rootless.state.INIT_LINK), or
    the pid and pid_start that survive in state.json's text (a truncated or garbled file
    still names them); either only if the PID still runs with that start time;
  - a process holding an fd of the state directory or of exec.fifo: the created init (its
    O_PATH fd for exec.fifo), a `start` under way;
  - a network helper or a process of rootless whose command line names a file in the state
    directory: pasta (its pid file), slirp4netns (its API socket), the shim;
  - a process holding a pidfd of a process found above: the network helper's watcher.
A process is only ever killed when it is found this way; everything here runs only for a
container whose record is lost, so the scan of /proc costs nothing on the usual path.
"""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import time

from rootless import state
from rootless.linux import procfs


# Programs that name files of the state directory in their command line: the network helpers
# (pasta re-executes as passt.avx2), and rootless's own processes (the shim). A reader such as
# `tail -f STATE/ID/ctr.log` is no part of the container and is left alone.
_OURS = ("pasta", "passt", "slirp4netns", "python", "rootless")


def _number_after(text: str, key: str) -> int | None:
    at = text.find(f'"{key}":')
    if at < 0:
        return None
    digits = text[at + len(key) + 3:].lstrip()[:20]
    end = 0
    while end < len(digits) and digits[end].isdigit() and digits[end].isascii():
        end += 1
    return int(digits[:end]) if end else None


def _recorded_init(cdir: state.ContainerDir) -> list[tuple[int, int]]:
    found = []
    try:
        pid, start = os.readlink(os.path.join(cdir.path, state.INIT_LINK)).split()
        found.append((int(pid), int(start)))
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(cdir.path, state.STATE_FILE), "rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
    except OSError:
        text = ""
    pid, start = _number_after(text, "pid"), _number_after(text, "pid_start")
    if pid and start:
        found.append((pid, start))
    return [(pid, start) for pid, start in found if procfs.is_alive(pid, start)]


def _links(pid: int) -> list[tuple[str, str]]:
    """(fd, target) of each fd of PID that we may read."""
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    links = []
    for name in names:
        try:
            links.append((name, os.readlink(f"{folder}/{name}")))
        except OSError:
            continue
    return links


def _pidfd_targets(pid: int, links: list[tuple[str, str]]) -> set[int]:
    targets = set()
    for fd, target in links:
        if target != "anon_inode:[pidfd]":
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("Pid:"):
                        targets.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return targets


def find(cdir: state.ContainerDir) -> list[int]:
    """PIDs of what runs of the container, the init (and its tree) first."""
    folder = os.path.realpath(cdir.path)
    inside = folder + "/"
    inits = _recorded_init(cdir)
    found = [pid for pid, _ in inits]
    pidfds: dict[int, set[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        links = _links(pid)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            argv = []
        program = os.path.basename(argv[0]) if argv else ""
        if any(t == folder or t == inside + state.EXEC_FIFO for _, t in links) \
                or program.startswith(_OURS) and any(a.startswith(inside) for a in argv):
            found.append(pid)
        targets = _pidfd_targets(pid, links)
        if targets:
            pidfds[pid] = targets
    found += [pid for pid, targets in pidfds.items() if targets & set(found) and pid not in found]
    tree = []
    for pid in found:
        tree += [pid, *procfs.descendants(pid)]
    return list(dict.fromkeys(tree))


def remove(cdir: state.ContainerDir, timeout: float = 10.0) -> None:
    """Kill what find() finds, wait for it, remove the state directory whatever it holds."""
    pids = {pid: procfs.start_time(pid) for pid in find(cdir)}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(procfs.is_alive(pid, start) for pid, start in pids.items()) and time.monotonic() < deadline:
        time.sleep(0.005)
    _remove_all(cdir.path)


def _remove_all(path: str) -> None:
    """rm -rf of the state directory: a directory in place of state.json may hold anything,
    and may be closed to its owner (mode 0)."""
    import shutil
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return

    def retry(function, failed, _exc) -> None:
        parent = os.path.dirname(failed)
        os.chmod(parent, 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
            shutil.rmtree(failed)
        else:
            function(failed)

    for root, dirs, _files in os.walk(path):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                try:
                    os.chmod(os.path.join(root, name), 0o700)
                except OSError:
                    pass
    try:
        shutil.rmtree(path, onerror=retry)
    except FileNotFoundError:
        pass
    except OSError as err:
        from rootless.errors import RootlessError
        raise RootlessError(f"remove {err.filename or path}: {err.strerror} (the state directory holds files "
                            "that are not yours: remove them as their owner)") from None
