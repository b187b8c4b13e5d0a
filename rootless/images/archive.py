"""Images from files: an OCI image layout (a directory, or a tar of one: oci-archive), a
docker-archive tar (`podman save`, `docker save`), or a plain rootfs tarball (one layer).

The kind is read from the content, not the file name: a directory or tar with `oci-layout` is
an OCI layout, a tar with a top-level `manifest.json` a docker-archive, anything else that is a
tar (gzip, zstd or plain) a rootfs. Every blob goes through Store.put_blob, so it is verified
against its digest before anything uses it.
"""

import json
import os
import shutil
import tarfile

from rootless.images import image
from rootless.images.digest import ImageError, hex_of
from rootless.images.store import Store
from rootless.images.unpack import uncompressed_digest

REF_NAME = "org.opencontainers.image.ref.name"


class _Dir:
    def __init__(self, path: str):
        self.path = path

    def names(self) -> set[str]:
        return {"oci-layout"} if os.path.exists(os.path.join(self.path, "oci-layout")) else set()

    def open(self, name: str):
        try:
            return open(os.path.join(self.path, name), "rb")
        except FileNotFoundError:
            raise ImageError(f"{self.path}: {name} is missing") from None


class _Tar:
    def __init__(self, path: str):
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:*")
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers()}
        except (tarfile.TarError, OSError) as err:
            self.tar, self.members = None, {}
            self.error = str(err)

    def names(self) -> set[str]:
        return set(self.members)

    def open(self, name: str):
        member = self.members.get(name.removeprefix("./"))
        while member is not None and member.issym():
            member = self.members.get(os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname)))
        handle = self.tar.extractfile(member) if member is not None else None
        if handle is None:
            raise ImageError(f"{self.path}: {name} is missing from the archive")
        return handle


def load(store: Store, path: str, name: str | None = None, platform: str | None = None) -> list[tuple[dict, list[str], int]]:
    """Load every image of the archive at `path` (just one for a rootfs). Returns what
    image.commit returned for each."""
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file or directory")
    source = _Dir(path) if os.path.isdir(path) else _Tar(path)
    if isinstance(source, _Dir) and not source.names():
        raise ImageError(f"{path} is a directory without oci-layout: not an OCI image layout")
    stem = _stem(path)
    with store.lock("store", exclusive=False):
        if "oci-layout" in source.names():
            images = _oci_layout(store, source, stem, name, platform)
        elif "manifest.json" in source.names():
            images = _docker_archive(store, source, stem, name)
        else:
            images = [(_rootfs(store, path, source), name or f"localhost/{stem}:latest")]
        return [image.commit(store, n, digest) for digest, n in images]


def _stem(path: str) -> str:
    base = os.path.basename(os.path.normpath(path)).lower()
    for suffix in (".gz", ".tgz", ".zst", ".tar", ".oci", ".docker"):
        base = base.removesuffix(suffix)
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in base) or "image"


def _copy_blob(store: Store, source, digest: str) -> None:
    def fill(f):
        with source.open(f"blobs/sha256/{hex_of(digest)}") as src:
            shutil.copyfileobj(src, f, 1 << 20)
    store.put_blob(digest, fill)


def _normal_name(ref: str, stem: str) -> str:
    if "/" in ref or ":" in ref:
        return ref if "/" in ref.split(":")[0] or "." in ref.split("/")[0] else f"localhost/{ref}"
    return f"localhost/{stem}:{ref}"


def _oci_layout(store: Store, source, stem: str, name: str | None, platform: str | None) -> list[tuple[str, str]]:
    with source.open("index.json") as f:
        index_bytes = f.read()
    index = json.loads(index_bytes)
    found = []
    for entry in index.get("manifests", []):
        ref = (entry.get("annotations") or {}).get(REF_NAME) or (entry.get("annotations") or {}).get("io.containerd.image.name")
        descriptor = entry
        if entry.get("mediaType") in image.INDEXES:
            _copy_blob(store, source, entry["digest"])
            descriptor = image.pick_platform(store.read_blob(entry["digest"]), platform)
        elif entry.get("platform") and platform and not _platform_matches(entry["platform"], platform):
            continue
        found.append((descriptor["digest"], ref))
    if not found:
        raise ImageError(f"{source.path}: index.json names no image")
    if name and len(found) > 1:
        found = found[:1]
    images = []
    for digest, ref in found:
        _copy_blob(store, source, digest)
        config, layers = image.layers_of(store.read_blob(digest))
        _copy_blob(store, source, config["digest"])
        for layer, diff_id in zip(layers, image.diff_ids(store, config["digest"], len(layers))):
            if not store.has_layer(diff_id):
                _copy_blob(store, source, layer["digest"])
        images.append((digest, name or _normal_name(ref or "latest", stem)))
    return images


def _platform_matches(plat: dict, wanted: str) -> bool:
    parts = wanted.split("/")
    return [plat.get("os"), plat.get("architecture")] == parts[:2]


def _docker_archive(store: Store, source, stem: str, name: str | None) -> list[tuple[str, str]]:
    with source.open("manifest.json") as f:
        entries = json.load(f)
    images = []
    for entry in entries:
        with source.open(entry["Config"]) as f:
            config_bytes = f.read()
        config_digest = store.put_bytes(config_bytes)
        layers = []
        for layer_name in entry["Layers"]:
            with source.open(layer_name) as src:
                head = src.read(4)
                src.seek(0)
                digest = store.put_blob(None, lambda f, src=src: shutil.copyfileobj(src, f, 1 << 20))
            layers.append((digest, os.path.getsize(store.blob_path(digest)), image.layer_media_type(head)))
        manifest = image.oci_manifest(config_digest, len(config_bytes), layers)
        manifest_digest = store.put_bytes(manifest)
        tags = entry.get("RepoTags") or []
        for tag in ([name] if name else tags) or [f"localhost/{stem}:latest"]:
            images.append((manifest_digest, tag if "/" in tag else f"localhost/{tag}"))
    return images


def _rootfs(store: Store, path: str, source) -> str:
    """A plain rootfs tarball as a one-layer image whose command is /bin/sh."""
    if getattr(source, "tar", 1) is None:
        with open(path, "rb") as f:
            if f.read(4) != b"\x28\xb5\x2f\xfd":
                raise ImageError(f"{path} is neither an OCI layout, a docker-archive nor a tar archive: "
                                 f"{source.error}")
    with open(path, "rb") as src:
        head = src.read(4)
        src.seek(0)
        digest = store.put_blob(None, lambda f: shutil.copyfileobj(src, f, 1 << 20))
    diff_id = uncompressed_digest(store.blob_path(digest), store.max_bytes)
    config = {"architecture": image.host_platform().split("/", 1)[1], "os": "linux",
              "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = store.put_bytes(config_bytes)
    layer = (digest, os.path.getsize(store.blob_path(digest)), image.layer_media_type(head))
    return store.put_bytes(image.oci_manifest(config_digest, len(config_bytes), [layer]))
