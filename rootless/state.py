"""The container's state directory: ROOT/ID/{state.json, exec.fifo, front}.

- The directory is made with mkdir, so two creates of one id cannot both succeed.
- state.json is written to a temporary name and renamed, so readers never see half a file.
- Commands that change a container hold an exclusive flock on its directory.
- The status is derived, not stored: the init's PID plus its start time identify it (a reused
  PID is never mistaken for it); exec.fifo exists until `start` consumes it.
- `front` is what the compiled front reads instead of state.json (rootless/front/view.py),
  written with it; the front derives the status as status() below does.
"""

import fcntl
from rootless import jsonlite as json
import os
import time

from rootless.linux import procfs
from rootless.errors import ContainerNotFound, RootlessError

STATE_FILE = "state.json"
# A second record of the init, beside state.json: a symlink whose target is "PID START" (one
# syscall, never half-written), so `delete -f` still finds the init when state.json is corrupt.
INIT_LINK = "init"
CONFIG_FILE = "config.json"
EXEC_FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")
_MAX_ID = 255  # NAME_MAX: the id names the state directory


def validate_id(container_id: str) -> None:
    if not container_id or container_id in (".", "..") or not _ID_CHARS.issuperset(container_id):
        raise RootlessError(f"invalid container id {container_id!r}: use letters, digits, '_', '+', '-' and '.'")
    if len(container_id) > _MAX_ID:
        raise RootlessError(f"invalid container id: {len(container_id)} characters, at most {_MAX_ID}")


class CorruptState(RootlessError):
    """state.json is there but is no record: `delete -f` still removes what it can find."""

    def __init__(self, container_id: str, why: str):
        super().__init__(f"state of container {container_id} is corrupt ({why}): "
                         f"remove it with `rootless delete -f {container_id}`")


# What each field of state.json must be (rootless.create.launcher writes it); the verbs index
# these without checking again.
_REQUIRED = {"ociVersion": str, "id": str, "pid": int, "bundle": str, "rootfs": str, "created": str}
_OPTIONAL = {"pid_start": (int, type(None)), "owner": str, "annotations": dict, "namespaces": dict,
             "network": dict, "shim": dict, "notify": bool, "rootless": bool, "cgroup_manager": (str, type(None))}


def _check_record(container_id: str, record) -> dict:
    if not isinstance(record, dict):
        raise CorruptState(container_id, f"a JSON {type(record).__name__}, not an object")
    for key, kind in (*_REQUIRED.items(), *_OPTIONAL.items()):
        if key not in record and key in _OPTIONAL:
            continue
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise CorruptState(container_id, f"{key} is {type(value).__name__}")
    if record["id"] != container_id:
        raise CorruptState(container_id, f"it names container {record['id']!r}")
    namespaces = record.get("namespaces", {})
    if not isinstance(namespaces.get("new", []), list) or not isinstance(namespaces.get("joined", {}), dict):
        raise CorruptState(container_id, "namespaces has the wrong shape")
    for name in ("network", "shim"):
        for key, value in record.get(name, {}).items():
            if key.endswith(("pid", "_start")) and (not isinstance(value, (int, type(None))) or isinstance(value, bool)):
                raise CorruptState(container_id, f"{name}.{key} is {type(value).__name__}")
    if not isinstance(record.get("network", {}).get("files", []), list) \
            or "shim" in record and not isinstance(record["shim"].get("pid"), int):
        raise CorruptState(container_id, "network or shim has the wrong shape")
    return record


def rfc3339_now() -> str:
    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"


class ContainerDir:
    """The state directory of one container id under a state root."""

    def __init__(self, root: str, container_id: str):
        validate_id(container_id)
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self.fifo = os.path.join(self.path, EXEC_FIFO)
        self._lock_fd: int | None = None

    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, STATE_FILE))

    def make(self) -> None:
        """Create the directory; fails if the id is taken. 0711: the container's user, mapped to
        another host ID, must reach exec.fifo inside it through the directory fd it holds."""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            if not os.path.isdir(self.root):
                raise RootlessError(f"state root {self.root}: not a directory (give --root a directory)") from None
            raise RootlessError(f"container with given ID already exists: {self.id}") from None
        except OSError as err:
            raise RootlessError(f"make the state directory {self.path}: {err.strerror} "
                                "(give --root a directory you can write)") from None
        os.chmod(self.path, 0o711)  # mkdir obeys the umask

    def make_fifo(self) -> None:
        os.mkfifo(self.fifo, 0o622)
        os.chmod(self.fifo, 0o622)

    def lock(self) -> "ContainerDir":
        """Take the exclusive lock (released by unlock or process exit)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        except OSError as err:
            raise CorruptState(self.id, f"open {self.path}: {err.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        return self

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "ContainerDir":
        return self.lock()

    def __exit__(self, *exc) -> None:
        self.unlock()

    def load(self) -> dict:
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                record = json.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        except OSError as err:
            raise CorruptState(self.id, f"read {STATE_FILE}: {err.strerror}") from None
        except (ValueError, RecursionError) as err:
            raise CorruptState(self.id, str(err)[:200]) from None
        return _check_record(self.id, record)

    def save(self, state: dict, name: str = STATE_FILE) -> None:
        self.prepare_save(state, name)()

    def prepare_save(self, state: dict, name: str = STATE_FILE):
        """save() up to the renames, which the returned function makes: create writes the
        record while the init sets itself up, and puts it in place once the init is ready."""
        final = os.path.join(self.path, name)
        temporary = final + ".tmp"
        with open(temporary, "w") as f:
            f.write(json.dumps(state))
        if name != STATE_FILE:
            return lambda: os.rename(temporary, final)
        from rootless.front import view
        # The view names state.json's inode, size and mtime, which the rename keeps.
        put_view = view.prepare(self.path, state, state_text(state, "stopped"), os.stat(temporary))

        def put_in_place() -> None:
            os.rename(temporary, final)
            if state.get("pid_start"):
                try:
                    os.symlink(f"{state['pid']} {state['pid_start']}", os.path.join(self.path, INIT_LINK))
                except FileExistsError:
                    pass
            put_view()
        return put_in_place

    def save_config(self, config: dict) -> None:
        """config.json as the container was created from it (with the flags' annotations):
        `exec` takes the process's defaults and security settings from it, whatever happens
        to the bundle later."""
        self.save(config, CONFIG_FILE)

    def load_config(self) -> dict:
        try:
            with open(os.path.join(self.path, CONFIG_FILE)) as f:
                return json.loads(f.read())
        except FileNotFoundError:
            raise RootlessError(f"container {self.id} has no saved config.json: it was created by "
                                "an older rootless; recreate it") from None

    def remove(self) -> None:
        """Remove the directory and what it holds (files, and directories of files: the
        notify directory)."""
        _remove_tree(self.path, depth=1)


def _remove_tree(path: str, depth: int) -> None:
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            if depth > 0:
                _remove_tree(os.path.join(path, name), depth - 1)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def status(cdir: ContainerDir, state: dict) -> str:
    pid = state.get("pid") or 0
    if not procfs.is_alive(pid, state.get("pid_start")):
        return "stopped"
    cgroup = (state.get("cgroup") or {}).get("path")
    if cgroup and _frozen(cgroup):
        return "paused"
    if os.path.exists(cdir.fifo):
        return "created"
    return "running"


def _frozen(cgroup: str) -> bool:
    """`pause` froze it (rootless.cgroups.fs.freeze): cgroup.freeze reads 1."""
    try:
        with open(os.path.join(cgroup, "cgroup.freeze"), "rb") as f:
            return f.read(1) == b"1"
    except OSError:
        return False


def list_ids(root: str) -> list[str]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE))]


def write_pid_file(path: str, pid: int) -> None:
    """runc's pid file: host PID, no newline, written atomically."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except OSError as err:
        raise RootlessError(f"write the pid file {path}: {err.strerror}") from None


def oci_state(cdir: ContainerDir, state: dict, with_owner: bool = False) -> dict:
    """The state JSON `rootless state` prints: OCI's fields plus runc's rootfs, created, owner.
    runc fills the owner only for `list` (with_owner); its `state` prints "owner": ""."""
    return oci_fields(state, status(cdir, state), with_owner)


def oci_fields(state: dict, current: str, with_owner: bool = False) -> dict:
    result = {
        "ociVersion": state["ociVersion"],
        "id": state["id"],
        "pid": state["pid"] if current != "stopped" else 0,
        "status": current,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
        "owner": state.get("owner", "") if with_owner else "",
    }
    if state.get("annotations"):
        result["annotations"] = state["annotations"]
    return result


def state_text(state: dict, current: str) -> str:
    """What `rootless state` prints for a container in status `current`."""
    return json.dumps(oci_fields(state, current), indent=2) + "\n"
