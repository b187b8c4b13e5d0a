"""Manifests and image records: what a pull or a load hands the store once the blobs are in.

Media types accepted: OCI image manifest and index, Docker schema 2 manifest and manifest list.
The record a name points to carries what `images`, `bundle` and `prune` need without parsing
the manifest again: the manifest and config digests and each layer's blob digest and diff ID.
"""

import time

from rootless import jsonlite as json

from rootless.images.digest import ImageError
from rootless.images.store import Store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join(MANIFESTS + INDEXES)


def media_type(data: bytes, header: str | None = None) -> str:
    """The manifest's media type: its own field, else the transport's, else by shape."""
    doc = _json(data, "manifest")
    kind = doc.get("mediaType") or (header or "").split(";")[0].strip()
    if not kind:
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if kind not in MANIFESTS + INDEXES:
        raise ImageError(f"unsupported manifest type {kind!r} (schema 1 and artifacts are not images rootless runs)")
    return kind


def _json(data: bytes, what: str) -> dict:
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise ImageError(f"the {what} is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ImageError(f"the {what} is not a JSON object")
    return doc


def host_platform() -> str:
    import platform
    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm/v7", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)
    return f"linux/{arch}"


def pick_platform(index: bytes, platform: str | None) -> dict:
    """The descriptor for `platform` (os/arch[/variant], default this machine's) in an index."""
    wanted = (platform or host_platform()).split("/")
    doc = _json(index, "image index")
    offered = []
    for entry in doc.get("manifests", []):
        plat = entry.get("platform") or {}
        have = [plat.get("os", ""), plat.get("architecture", "")] + ([plat["variant"]] if plat.get("variant") else [])
        offered.append("/".join(have))
        if have[:2] == wanted[:2] and (len(wanted) < 3 or have[2:3] == wanted[2:3]):
            return entry
    if len(doc.get("manifests", [])) == 1 and not doc["manifests"][0].get("platform"):
        return doc["manifests"][0]  # an OCI layout with one untagged image
    raise ImageError(f"no image for platform {'/'.join(wanted)} (offered: {', '.join(offered) or 'none'}): "
                     "choose one with --platform")


def layers_of(manifest: bytes) -> tuple[dict, list[dict]]:
    """(config descriptor, layer descriptors) of an image manifest."""
    doc = _json(manifest, "manifest")
    config, layers = doc.get("config"), doc.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise ImageError("the manifest has no config or layers: not an image manifest")
    for layer in layers:
        kind = layer.get("mediaType", "")
        if "nondistributable" in kind or "foreign" in kind:
            continue
        if not (kind.startswith(OCI_LAYER) or "docker.image.rootfs" in kind):
            raise ImageError(f"layer {layer.get('digest')} has media type {kind!r}: not a filesystem layer")
    return config, layers


def commit(store: Store, name: str, manifest_digest: str) -> tuple[dict, list[str], int]:
    """Unpack the layers of the stored manifest and point `name` at it. The blobs must be in
    the store. Returns (record, notes, layers unpacked now)."""
    manifest = store.read_blob(manifest_digest)
    config_desc, layers = layers_of(manifest)
    config = _json(store.read_blob(config_desc["digest"]), "image config")
    diff_ids = diff_ids_of(config, len(layers))
    pairs = [(layer["digest"], diff_id) for layer, diff_id in zip(layers, diff_ids)]
    notes, unpacked = store.unpack_layers(pairs)
    record = {
        "manifest": manifest_digest,
        "config": config_desc["digest"],
        "layers": [{"digest": d, "diffID": i, "size": layer.get("size", 0)} for (d, i), layer in zip(pairs, layers)],
        "created": config.get("created", ""),
        "stored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    store.set_name(name, record)
    return dict(record, name=name), notes, unpacked


def diff_ids_of(config: dict, count: int) -> list[str]:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != count or not all(isinstance(d, str) for d in diff_ids):
        raise ImageError(f"the image config lists {len(diff_ids)} layers, the manifest {count}: corrupt image")
    return diff_ids


def diff_ids(store: Store, config_digest: str, count: int) -> list[str]:
    return diff_ids_of(_json(store.read_blob(config_digest), "image config"), count)


def image_config(store: Store, record: dict) -> dict:
    return _json(store.read_blob(record["config"]), "image config")


def oci_manifest(config_digest: str, config_size: int, layers: list[tuple[str, int, str]]) -> bytes:
    """An OCI manifest for images made here (docker-archive, rootfs tarball)."""
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
           "layers": [{"mediaType": kind, "digest": d, "size": size} for d, size, kind in layers]}
    return json.dumps(doc).encode()  # compact: separators "," and ":"


def layer_media_type(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return OCI_LAYER + "+gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return OCI_LAYER + "+zstd"
    return OCI_LAYER
