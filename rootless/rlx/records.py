"""rlx's containers: what a container is to rlx, and where it is kept. The contract the verbs
(run, ps, logs, stop, kill, rm, exec, inspect, port, wait, attach) share:

- rlx's containers are runtime containers under the runtime state root `$XDG_RUNTIME_DIR/rlx`
  (root: /run/rlx; `state_root()`), created through the runtime's own code in-process (no
  second interpreter), with the shim when `-d` is given.
- Each container has a directory STORE/containers/ID/ (ID: 64 hex, short ID its first 12)
  holding `bundle/` (config.json, rootfs), `record.json` and what the shim keeps (its log:
  `ctr.log`, k8s-file; `log_path()`).
- record.json: {"id", "name", "image" (the reference as typed, or the directory/archive path,
  or "host"), "image_id" (or null), "command" (list), "created" (RFC 3339 UTC), "ports" (list
  of {"host_ip", "host_port", "container_port", "protocol"}), "auto_remove" (bool),
  "stop_signal" (name, from the image's StopSignal else SIGTERM), "network", "bundle"}.
- A foreground container (no `-d`) is the runtime's only while it runs: once it exits, its
  runtime state is deleted and record.json gains "exit_code" (int) and "finished" (RFC 3339).
  A detached one keeps its runtime state (stopped) and the shim's exit.json until removed.
- Names are unique (a docker-style random adjective_noun when none is given); a taken name is
  refused in one line.
- This module offers: create() (a new record, saved; its directory made) and save(), load(id),
  find(name_or_id_or_short_prefix) -> record (one clear line when none or ambiguous), all(),
  and remove(id) (the directory and everything in it).

The runtime state of a container (running, exit code...) is the runtime's, read through
rootless.state under state_root() with the same ID; the record says only what rlx decided.
"""

import fcntl
import os
import time

from rootless import jsonlite as json
from rootless.errors import RootlessError

RECORD = "record.json"
LOG = "ctr.log"

_ADJECTIVES = ("agile", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fancy", "gentle",
               "happy", "jolly", "keen", "lucid", "merry", "nimble", "plucky", "quiet", "rapid", "serene",
               "sharp", "steady", "sunny", "swift", "tender", "vivid", "wise", "witty", "zealous", "zen")
_NOUNS = ("babbage", "bell", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi", "gauss", "hopper",
          "hypatia", "kepler", "knuth", "lamport", "lovelace", "meitner", "newton", "noether", "pascal",
          "ritchie", "shannon", "tesla", "thompson", "torvalds", "turing", "wozniak", "yalow", "wirth")


class ContainerError(RootlessError):
    """No such container, an ambiguous prefix, a taken name."""


def state_root(env=os.environ) -> str:
    """The runtime state root of rlx's containers (apart from `rootless`'s own, so that runc
    users' `rootless list` does not show them)."""
    from rootless import paths
    return paths.default_state_root(env, "rlx")


def containers_dir(store_root: str) -> str:
    return os.path.join(store_root, "containers")


def container_dir(store_root: str, container_id: str) -> str:
    return os.path.join(containers_dir(store_root), container_id)


def log_path(store_root: str, container_id: str) -> str:
    return os.path.join(container_dir(store_root, container_id), LOG)


def now() -> str:
    """RFC 3339 in UTC, to the microsecond (datetime costs an import: time does it)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9 // 1000:06d}Z"


class _Locked:
    """Names are checked and taken under one lock, so two runs cannot take the same name."""

    def __init__(self, store_root: str):
        self.path = containers_dir(store_root)

    def __enter__(self):
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        self.fd = os.open(os.path.join(self.path, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def _pick(words: tuple[str, ...]) -> str:
    return words[int.from_bytes(os.urandom(4), "little") % len(words)]


def random_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}"
        if name not in taken:
            return name
    return f"{_pick(_ADJECTIVES)}_{_pick(_NOUNS)}_{os.urandom(3).hex()}"


def check_name(name: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    if not name or not name[0].isalnum() or not set(name) <= allowed or len(name) > 128:
        raise ContainerError(f"--name {name!r}: use letters, digits, _ . - (starting with a letter or digit)")


def create(store_root: str, *, name: str | None, image: str, image_id: str | None, command: list[str],
           ports: list[dict] | None = None, auto_remove: bool = False, stop_signal: str = "SIGTERM",
           network: str = "none") -> dict:
    """A new container's record, saved, with its directory (bundle/ left for the caller to fill)."""
    if name is not None:
        check_name(name)
    with _Locked(store_root):
        taken = {record["name"]: record["id"] for record in all(store_root)}
        if name in taken:
            raise ContainerError(f"the name {name!r} is already used by container {taken[name][:12]}: "
                                 f"remove it (rlx rm {name}) or choose another --name")
        container_id = os.urandom(32).hex()
        path = container_dir(store_root, container_id)
        os.makedirs(os.path.join(path, "bundle"), mode=0o700)
        record = {"id": container_id, "name": name or random_name(set(taken)), "image": image,
                  "image_id": image_id, "command": list(command), "created": now(), "ports": list(ports or []),
                  "auto_remove": auto_remove, "stop_signal": stop_signal, "network": network,
                  "bundle": os.path.join(path, "bundle")}
        save(store_root, record)
    return record


def save(store_root: str, record: dict) -> None:
    path = container_dir(store_root, record["id"])
    temporary = os.path.join(path, f".{RECORD}.tmp")
    with open(temporary, "w") as f:
        f.write(json.dumps(record, indent=2))
    os.rename(temporary, os.path.join(path, RECORD))


def load(store_root: str, container_id: str) -> dict:
    try:
        with open(os.path.join(container_dir(store_root, container_id), RECORD)) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise ContainerError(f"no container {container_id} (rlx ps -a lists them)") from None
    except ValueError as err:
        raise ContainerError(f"container {container_id}: record.json is corrupt ({err}): rlx rm -f it") from None


def all(store_root: str) -> list[dict]:  # noqa: A001 - the contract's name
    """Every record, oldest first; a directory without a readable record (a run that is being
    made, or a half-removed one) is left out."""
    try:
        ids = os.listdir(containers_dir(store_root))
    except FileNotFoundError:
        return []
    found = []
    for container_id in ids:
        if len(container_id) != 64:
            continue
        try:
            found.append(load(store_root, container_id))
        except ContainerError:
            continue
    return sorted(found, key=lambda record: record["created"])


def find(store_root: str, ref: str) -> dict:
    """A container by name, full ID or an ID prefix that only one container has."""
    records = all(store_root)
    for record in records:
        if ref in (record["name"], record["id"]):
            return record
    matches = [record for record in records if ref and record["id"].startswith(ref.lower())]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ContainerError(f"{ref} is ambiguous: it starts the IDs of " +
                             ", ".join(f"{r['id'][:12]} ({r['name']})" for r in matches) + ": give more of the ID")
    raise ContainerError(f"no container {ref} (rlx ps -a lists them)")


def remove(store_root: str, container_id: str) -> None:
    """The container's directory and all in it. Files the container wrote in its root belong
    to subordinate IDs: what the caller cannot remove is removed as root of the store's user
    namespace."""
    path = container_dir(store_root, container_id)
    if not os.path.lexists(path):
        return
    try:
        _rmtree(path)
    except PermissionError:
        from rootless.images import userns
        from rootless.images.store import Store
        userns.run_as_mapped_root(Store(store_root).idmap(), _rmtree, path)


def _rmtree(path: str) -> None:
    """shutil.rmtree without shutil (its import pulls in bz2 and lzma): the directories here
    are small. overlay's work/work is mode 000: its owner opens it up first; under keep-id it
    belongs to a subordinate ID, and removing it while empty (it is, once unmounted) spares a
    user-namespace helper (about 30 ms)."""
    try:
        entries = list(os.scandir(path))
    except PermissionError:
        try:
            os.rmdir(path)
            return
        except OSError:
            pass
        os.chmod(path, 0o700)
        entries = list(os.scandir(path))
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            _rmtree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(path)
