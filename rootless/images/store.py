"""The image store: content-addressed, shared by every image, safe under concurrent pulls.

Layout under the root ($XDG_DATA_HOME/rootless, or /var/lib/rootless for real root):

  blobs/sha256/HEX   manifests, configs and layer blobs, each verified against HEX before its
                     rename here (and again when a layer is unpacked from it); a layer's blob
                     is removed once the layer is unpacked
  layers/HEX         one layer unpacked (HEX: its diff ID, the uncompressed digest), shared by
                     every image that has it; only ever made by renaming a complete directory
  names/QUOTED       an image name -> its record (manifest, config, layers), written atomically
  tmp/               downloads and unpacks in progress; nothing reads from here, so a killed
                     pull leaves only garbage that `prune` removes
  locks/             a lock file per blob and per layer (flock), so two pulls sharing a layer
                     fetch and unpack it once
  store.lock         pulls and loads hold it shared, rmi and prune exclusive: a prune never
                     removes a layer a running pull is about to name
  idmap.json         the ID map the layers were unpacked with (a rootless store only): the
                     bundles get the same one
  mapped/KEY/HEX     a layer copied and chowned for another ID map (keep-id: images/idshift.py),
                     removed with the layer

Files in a rootless store belong to the caller's subordinate IDs: anything that writes or
removes inside layers/ runs as root of a user namespace with that map (images/userns.py).
"""

import fcntl
import os
import time

from rootless import jsonlite as json
from rootless.images.digest import ImageError, digest_of, hex_of

# `rlx run` reads the store on every call: tarfile (unpack), idmap (userns), pickle, shutil and
# urllib are imported where they are used, not here (together about 40 ms).

DEFAULT_MAX_LAYER_BYTES = 32 << 30


def default_root(env=os.environ) -> str:
    if os.geteuid() == 0 and not env.get("XDG_DATA_HOME"):
        return "/var/lib/rootless"
    data = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "rootless")


def max_layer_bytes(env=os.environ) -> int:
    text = env.get("RLX_MAX_LAYER_SIZE", "")
    if not text:
        return DEFAULT_MAX_LAYER_BYTES
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    factor = units.get(text[-1].lower(), 1)
    number = text[:-1] if factor > 1 else text
    if not number.isdigit():
        raise ImageError(f"RLX_MAX_LAYER_SIZE={text!r}: expected a size like 512M or 40G")
    return int(number) * factor


class Store:
    def __init__(self, root: str, *, max_bytes: int | None = None, rootless: bool | None = None):
        self.root = root
        self.max_bytes = max_layer_bytes() if max_bytes is None else max_bytes
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        for sub in ("blobs/sha256", "layers", "names", "tmp", "locks"):
            try:
                os.makedirs(os.path.join(root, sub), mode=0o700, exist_ok=True)
            except OSError as err:
                raise ImageError(f"the image store {root}: mkdir `{err.filename}`: {err.strerror} "
                                 "(choose another with --store)") from None
        self._plan = None

    # -- paths and locks -------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", hex_of(digest))

    def layer_path(self, diff_id: str) -> str:
        return os.path.join(self.root, "layers", hex_of(diff_id))

    def tmp_path(self, what: str) -> str:
        return os.path.join(self.root, "tmp", f"{what}-{os.getpid()}-{time.monotonic_ns()}")

    def lock(self, name: str, exclusive: bool = True) -> "_Lock":
        path = os.path.join(self.root, "store.lock" if name == "store" else os.path.join("locks", name + ".lock"))
        return _Lock(path, exclusive)

    def idmap(self):
        """The ID map of this store's layers (None: real root, the identity). Chosen on first
        use and kept: changing it would make every unpacked layer's owners wrong."""
        if not self.rootless:
            return None
        if self._plan is None:
            from rootless.images import userns
            path = os.path.join(self.root, "idmap.json")
            try:
                with open(path) as f:
                    self._plan = userns.plan_from_json(json.loads(f.read()))
            except FileNotFoundError:
                plan = userns.caller_plan()
                for warning in plan.warnings:
                    print(f"rlx: warning: {warning}", file=__import__("sys").stderr)
                self._write_json(path, userns.plan_to_json(plan))
                self._plan = plan
        return self._plan

    def _write_json(self, path: str, data) -> None:
        tmp = self.tmp_path("json")
        with open(tmp, "w") as f:
            f.write(json.dumps(data, indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    # -- blobs -----------------------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def put_blob(self, digest: str | None, fill) -> str:
        """Store a blob: fill(file) writes it; it is hashed while written and renamed into
        blobs/ only if it matches `digest` (None: whatever it is, e.g. a config we made).
        Returns its digest. A blob already present is not fetched again."""
        import contextlib
        if digest is not None:
            hex_of(digest)
            if self.has_blob(digest):
                return digest
        with self.lock(hex_of(digest) if digest else "new-blob"):
            if digest is not None and self.has_blob(digest):
                return digest  # another pull fetched it while this one waited
            tmp = self.tmp_path("blob")
            try:
                # No fsync: a blob torn by a crash fails its digest check, which every use repeats.
                with open(tmp, "wb") as f:
                    writer = _HashingWriter(f)
                    fill(writer)
                got = writer.digest()
                if digest is not None and got != digest:
                    raise ImageError(f"blob {digest} arrived as {got}: corrupted in transit or at the "
                                     "source; refused")
                os.rename(tmp, self.blob_path(got))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return got

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        return self.put_blob(digest, lambda f: f.write(data))

    def read_blob(self, digest: str) -> bytes:
        """A small blob (manifest, config), verified on every read."""
        try:
            with open(self.blob_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the store: pull or load the image again") from None
        if digest_of(data) != digest:
            raise ImageError(f"blob {digest} in the store is corrupted: run `rlx rmi` and pull it again")
        return data

    # -- layers ----------------------------------------------------------------------------
    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(self.layer_path(diff_id))

    def unpack_layers(self, layers: list[tuple[str, str]]) -> tuple[list[str], int]:
        """Unpack each (blob digest, diff ID) not unpacked yet, under its layer lock, in one
        user-namespace helper. Returns (notes, how many were unpacked now)."""
        import contextlib
        from rootless.images import userns
        wanted = list(dict.fromkeys(layers))
        with contextlib.ExitStack() as stack:
            for _, diff_id in sorted(wanted, key=lambda item: item[1]):  # one order: no deadlock
                stack.enter_context(self.lock("layer-" + hex_of(diff_id)))
            todo = [(self.blob_path(d), d, diff_id, self.tmp_path("layer"), self.layer_path(diff_id))
                    for d, diff_id in wanted if not self.has_layer(diff_id)]
            if not todo:
                return [], 0
            notes = userns.run_as_mapped_root(self.idmap(), _unpack_all, todo, self.max_bytes, self.rootless)
            # A layer's compressed blob has served once unpacked (its digest was checked while
            # unpacking): keeping it would store every layer twice.
            for blob, *_ in todo:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(blob)
        return notes, len(todo)

    # -- names -----------------------------------------------------------------------------
    def _name_path(self, name: str) -> str:
        return os.path.join(self.root, "names", quote(name))

    def set_name(self, name: str, record: dict) -> None:
        self._write_json(self._name_path(name), dict(record, name=name))

    def records(self) -> list[dict]:
        found = []
        for entry in sorted(os.listdir(os.path.join(self.root, "names"))):
            try:
                with open(os.path.join(self.root, "names", entry)) as f:
                    record = json.loads(f.read())
            except (OSError, ValueError):
                continue
            record["name"] = unquote(entry)
            found.append(record)
        return found

    def find(self, ref: str) -> dict:
        """An image by name, name without `:latest`, short name (`busybox` for
        docker.io/library/busybox) or ID prefix (of the config digest)."""
        records = self.records()
        for candidate in (ref, ref + ":latest"):
            for record in records:
                if record["name"] == candidate:
                    return record
        tail = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        matches = [r for r in records if r["name"].endswith("/" + tail)]
        if len(matches) == 1:
            return matches[0]
        if len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref.removeprefix("sha256:")):
            ids = {r["config"]: r for r in records if hex_of(r["config"]).startswith(ref.removeprefix("sha256:"))}
            if len(ids) == 1:
                return next(iter(ids.values()))
        if len(matches) > 1:
            raise ImageError(f"{ref} is ambiguous: " + ", ".join(r["name"] for r in matches))
        raise ImageError(f"no image {ref} in the store {self.root}: `rlx pull` or `rlx load` it first")

    def remove_name(self, name: str) -> None:
        with self.lock("store"):
            os.unlink(self._name_path(name))

    # -- garbage ---------------------------------------------------------------------------
    def prune(self) -> dict:
        """Remove layers and blobs no name refers to, and every leftover of killed pulls."""
        import contextlib
        from rootless.images import userns
        with self.lock("store"):
            keep_blobs, keep_layers = set(), set()
            for record in self.records():
                keep_blobs.update([record["manifest"], record["config"]])
                for layer in record["layers"]:
                    keep_blobs.add(layer["digest"])
                    keep_layers.add(hex_of(layer["diffID"]))
            layers_dir = os.path.join(self.root, "layers")
            blobs_dir = os.path.join(self.root, "blobs", "sha256")
            tmp_dir = os.path.join(self.root, "tmp")
            doomed_layers = [e for e in os.listdir(layers_dir) if e not in keep_layers]
            doomed_blobs = [e for e in os.listdir(blobs_dir) if "sha256:" + e not in keep_blobs]
            leftovers = os.listdir(tmp_dir)
            paths = ([os.path.join(layers_dir, e) for e in doomed_layers] + [os.path.join(tmp_dir, e) for e in leftovers])
            paths += self._doomed_copies(keep_layers)
            freed = sum(os.path.getsize(os.path.join(blobs_dir, e)) for e in doomed_blobs)
            freed += userns.run_as_mapped_root(self.idmap(), _remove_all, paths, tmp_dir)
            for entry in doomed_blobs:
                os.unlink(os.path.join(blobs_dir, entry))
            for entry in os.listdir(os.path.join(self.root, "locks")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.root, "locks", entry))
        return {"layers": len(doomed_layers), "blobs": len(doomed_blobs), "leftovers": len(leftovers),
                "bytes": freed}

    def _doomed_copies(self, keep_layers: set[str]) -> list[str]:
        """mapped/KEY/HEX of the layers no image keeps (mapped/KEY too once it is empty)."""
        mapped = os.path.join(self.root, "mapped")
        try:
            keys = os.listdir(mapped)
        except FileNotFoundError:
            return []
        doomed = []
        for key in keys:
            copies = os.listdir(os.path.join(mapped, key))
            gone = [os.path.join(mapped, key, e) for e in copies if e not in keep_layers]
            doomed += gone if len(gone) < len(copies) else [os.path.join(mapped, key)]
        return doomed


class _HashingWriter:
    def __init__(self, f):
        import hashlib
        self.f, self.hash, self.count = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self.f.write(data)

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


UNPACK_WORKERS = 3


class _Lock:
    """flock on a lock file for a `with` block (a class: contextlib is not imported on
    `rlx run`'s path)."""

    def __init__(self, path: str, exclusive: bool):
        self.path, self.exclusive, self.fd = path, exclusive, -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def quote(name: str) -> str:
    """urllib.parse.quote(name, safe=""): a name as one file name."""
    safe = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
    return "".join(chr(b) if chr(b) in safe else f"%{b:02X}" for b in name.encode())


def unquote(text: str) -> str:
    parts = text.split("%")
    data = bytearray(parts[0].encode())
    for part in parts[1:]:
        data += bytes([int(part[:2], 16)]) + part[2:].encode()
    return data.decode("utf-8", errors="replace")


def _unpack_all(todo, max_bytes: int, in_userns: bool) -> list[str]:
    """In the user namespace: each layer into tmp/, then renamed into layers/ whole. Up to
    UNPACK_WORKERS layers at once (forked workers): unpacking waits mostly on file creation,
    not on the CPU, so layers overlap well even on two cores."""
    import pickle
    if len(todo) < 2:
        return _unpack_some(todo, max_bytes, in_userns)
    workers = []
    for n in range(min(UNPACK_WORKERS, len(todo))):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                result = ("ok", _unpack_some(todo[n::UNPACK_WORKERS], max_bytes, in_userns))
            except ImageError as err:
                result = ("error", err.message)
            except BaseException as err:  # noqa: BLE001 - reported as a line by the parent
                result = ("error", f"internal error: {type(err).__name__}: {err}")
            with os.fdopen(write_fd, "wb") as f:
                f.write(pickle.dumps(result))
            os._exit(0)
        os.close(write_fd)
        workers.append((pid, read_fd))
    notes, errors = [], []
    for pid, read_fd in workers:
        with os.fdopen(read_fd, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        kind, value = pickle.loads(data) if data else ("error", "an unpack worker died")
        if kind == "ok":
            notes += value
        else:
            errors.append(value)
    if errors:
        raise ImageError(errors[0])
    return notes


def _unpack_some(todo, max_bytes: int, in_userns: bool) -> list[str]:
    import shutil
    from rootless.images import unpack
    notes = []
    for blob, digest, diff_id, tmp, final in todo:
        try:
            notes += unpack.unpack_layer(blob, tmp, digest=digest, diff_id=diff_id, max_bytes=max_bytes,
                                         in_userns=in_userns)
            os.rename(tmp, final)
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    return notes


def _remove_all(paths: list[str], tmp_dir: str) -> int:
    """In the user namespace: rename each tree away first (it vanishes at once), then remove."""
    import contextlib
    import shutil
    freed = 0
    for path in paths:
        doomed = path if os.path.dirname(path) == tmp_dir else os.path.join(tmp_dir, "doomed-" + os.path.basename(path))
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, doomed)
            freed += _tree_size(doomed)
            if os.path.isdir(doomed) and not os.path.islink(doomed):
                shutil.rmtree(doomed)
            else:
                os.unlink(doomed)
    return freed


def _tree_size(path: str) -> int:
    import contextlib
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total
