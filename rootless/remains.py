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

The container's cgroup (a systemd scope or a cgroupfs directory), on a cgroup v2 host, is
found (find_cgroup) by what still names it for this container: the saved config.json's
cgroupsPath (the scope's unit name, or the directory create made from it), else the path
left in state.json's text, else the cgroup of the init found above when its name carries
the container's id. A cgroup holding the caller itself is never taken. Everything in it is
killed frozen (nothing escapes by forking), the scope is stopped (or the directory removed).

The poststop hooks then run from what create saved (hooks.json), else from the saved
config.json, else from the bundle's config.json when state.json's text still names the
bundle; when none of them can be read, one warning says that they were not run.
"""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import time

from rootless import paths, state
from rootless.errors import RootlessError
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


def _string_after(text: str, key: str, start: int = 0) -> str | None:
    """The JSON string value of the first `"key":` at or after `start` in damaged text."""
    at = text.find(f'"{key}":', start)
    if at < 0:
        return None
    rest = text[at + len(key) + 3:].lstrip()
    if not rest.startswith('"'):
        return None
    end = 1
    while end < len(rest) and rest[end] != '"':
        end += 2 if rest[end] == "\\" else 1
    from rootless import jsonlite
    try:
        value = jsonlite.loads(rest[:end + 1])
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _state_text(cdir: state.ContainerDir) -> str:
    try:
        with open(os.path.join(cdir.path, state.STATE_FILE), "rb") as f:
            return f.read(1 << 20).decode(errors="replace")
    except OSError:
        return ""


def _recorded_init(cdir: state.ContainerDir) -> list[tuple[int, int]]:
    found = []
    try:
        pid, start = os.readlink(os.path.join(cdir.path, state.INIT_LINK)).split()
        found.append((int(pid), int(start)))
    except (OSError, ValueError):
        pass
    text = _state_text(cdir)
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


def _saved_config(cdir: state.ContainerDir) -> dict | None:
    try:
        config = cdir.load_config()
    except (RootlessError, OSError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None


def _own_cgroup_path(mount: str) -> str:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return os.path.normpath(mount + "/" + line[3:].strip())
    except OSError:
        pass
    return mount


def _usable(path: str | None, mount: str) -> bool:
    """A cgroup directory below the mount that does not hold the caller (killing everything in
    it must not kill this process or its ancestors' cgroups)."""
    if not path:
        return False
    path = os.path.normpath(path)
    own = _own_cgroup_path(mount)
    return (path.startswith(mount + "/") and os.path.isdir(path) and path != own
            and not own.startswith(path + "/"))


def _find_dir(mount: str, name: str, depth: int = 12) -> str | None:
    """The cgroup named `name` (a scope's unit name) anywhere below the mount: systemd puts a
    scope below its slice, and a user's below user@UID.service."""
    stack = [(mount, 0)]
    while stack:
        folder, level = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name == name:
                    return entry.path
                if level < depth:
                    stack.append((entry.path, level + 1))
    return None


def find_cgroup(cdir: state.ContainerDir, inits: list[int], config: dict | None, text: str,
                mount: str = paths.CGROUP_MOUNT) -> dict | None:
    """{"path", "driver", "unit"} of the container's cgroup, or None (see the module's text)."""
    if not os.path.exists(os.path.join(mount, "cgroup.controllers")):
        return None  # not a cgroup v2 host: create made no cgroup
    from rootless.cgroups import cgpath
    linux = (config or {}).get("linux")
    if isinstance(linux, dict):
        cgroups_path = linux.get("cgroupsPath") or ""
        cgroups_path = cgroups_path if isinstance(cgroups_path, str) else ""
        try:
            _slice, unit = cgpath.systemd_unit(cgroups_path, cdir.id, rootless=True)
        except RootlessError:
            unit = None
        path = _find_dir(mount, unit) if unit else None
        if _usable(path, mount):
            return {"path": path, "driver": "systemd", "unit": unit}
        try:
            own = _own_cgroup_path(mount)[len(mount):] or "/"
            path = mount + cgpath.cgroupfs_path(cgroups_path, cdir.id, own)
        except RootlessError:
            path = None
        if _usable(path, mount):
            return {"path": path, "driver": "cgroupfs", "unit": None}
    at = text.find('"cgroup":')
    if at >= 0:
        path = _string_after(text, "path", at)
        if _usable(path, mount):
            driver = _string_after(text, "driver", at)
            unit = _string_after(text, "unit", at) if driver == "systemd" else None
            return {"path": os.path.normpath(path), "driver": driver or "cgroupfs", "unit": unit}
    for pid in inits:
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                own = cgpath.own_cgroup(f.read())
        except OSError:
            continue
        path = os.path.normpath(mount + "/" + (own or "").lstrip("/"))
        name = os.path.basename(path)
        if _usable(path, mount) and (name == cdir.id or name.endswith(f"-{cdir.id}.scope")):
            return {"path": path, "driver": "systemd" if name.endswith(".scope") else "cgroupfs",
                    "unit": name if name.endswith(".scope") else None}
    return None


def _remove_cgroup(found: dict, warn) -> None:
    """Everything in it killed frozen, then the scope stopped or the directory removed."""
    from rootless.cgroups import fs, host
    try:
        fs.kill_all(found["path"])
    except RootlessError as err:
        warn(f"the container's cgroup: {err.message}")
    if found["driver"] == "systemd" and found["unit"]:
        from rootless.cgroups import systemd
        system = os.geteuid() == 0 and host.read_host_uid() == 0
        address = host.bus_address(system, os.environ)
        if address:
            try:
                systemd.stop({"address": address, "uid": host.read_host_uid(), "unit": found["unit"]})
            except RootlessError as err:
                warn(f"stop {found['unit']}: {err.message}")
    if os.path.isdir(found["path"]):
        try:
            fs.remove(found["path"])
        except RootlessError as err:
            warn(f"the container's cgroup is left: {err.message}")


def _poststop(cdir: state.ContainerDir, config: dict | None, text: str, warn) -> None:
    """The poststop hooks from hooks.json, the saved config.json or the bundle's (see above)."""
    from rootless.process import hooks
    saved_hooks = None
    if os.path.exists(os.path.join(cdir.path, hooks.FILE)):
        try:
            saved_hooks = hooks.load(cdir.path)
        except RootlessError:
            pass
    bundle = _string_after(text, "bundle")
    if saved_hooks is None and config is not None:
        saved_hooks = config.get("hooks") if isinstance(config.get("hooks"), dict) else {}
    if saved_hooks is None and bundle:
        try:
            with open(os.path.join(bundle, "config.json"), "rb") as f:
                from rootless import jsonlite
                from_bundle = jsonlite.loads(f.read())
            saved_hooks = from_bundle.get("hooks") if isinstance(from_bundle.get("hooks"), dict) else {}
        except (OSError, ValueError, RecursionError, AttributeError):
            pass
    if saved_hooks is None:
        where = f"nor {bundle}/config.json can be read" if bundle else \
            "can be read, and the bundle's path was lost with state.json"
        warn(f"poststop hooks, if the container has any, not run: neither {cdir.path}/{hooks.FILE} nor {cdir.path}/{state.CONFIG_FILE} {where}")
        return
    try:
        hooks.check(saved_hooks)
    except RootlessError as err:
        warn(f"poststop hooks not run: {err.message}")
        return
    annotations = (config or {}).get("annotations")
    record = {"id": cdir.id, "bundle": bundle or "", "ociVersion": (config or {}).get("ociVersion", ""),
              "annotations": annotations if isinstance(annotations, dict) else None}
    hooks.run_all("poststop", saved_hooks, hooks.state_for(record, "stopped", 0), warn=warn)


def remove(cdir: state.ContainerDir, timeout: float = 10.0, warn=None) -> None:
    """Kill what find() and find_cgroup() find, wait for it, run the poststop hooks, remove
    the state directory whatever it holds."""
    warn = warn or (lambda message: None)
    text = _state_text(cdir) if os.path.isdir(cdir.path) else ""
    config = _saved_config(cdir) if os.path.isdir(cdir.path) else None
    found = find(cdir)
    cgroup = find_cgroup(cdir, found, config, text)
    if cgroup:
        _remove_cgroup(cgroup, warn)
    pids = {pid: procfs.start_time(pid) for pid in found}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(procfs.is_alive(pid, start) for pid, start in pids.items()) and time.monotonic() < deadline:
        time.sleep(0.005)
    if os.path.isdir(cdir.path) and not os.path.islink(cdir.path):
        _poststop(cdir, config, text, warn)
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
