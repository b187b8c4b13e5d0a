"""What `rlx run SOURCE` runs: a stored image (pulled when missing), an image archive (loaded
into the store first), a rootfs directory or tarball, or `host`.

An image's root is never copied per container: the container gets an overlay of the store's
unpacked layers (read-only, shared) with an upper directory of its own, mounted by the
container's init as root of its user namespace (the runtime's rootless.overlay annotation;
Linux 5.11+ allows that without real root). A rootfs directory is used as it is (podman's
--rootfs): the container writes into it.
"""

import os
import sys

from rootless.images.digest import ImageError

HOST = "host"
MERGED_USR = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")


class Source:
    def __init__(self, kind: str, shown: str, **fields):
        self.kind, self.shown = kind, shown      # kind: image, dir or host
        self.image_id = None
        self.config: dict = {}
        self.layers: list[str] = []
        self.rootfs: str | None = None
        self.passwd = self.group = ""
        self.__dict__.update(fields)

    @property
    def stop_signal(self) -> str:
        signal = (self.config.get("config") or {}).get("StopSignal") or "SIGTERM"
        return signal if signal.upper().startswith("SIG") or signal.isdigit() else "SIG" + signal.upper()


def resolve(store, text: str, *, debug, quiet: bool = False) -> Source:
    if text == HOST:
        return Source(HOST, HOST)
    if os.path.isdir(text) and not os.path.exists(os.path.join(text, "oci-layout")):
        from rootless.images import flatten
        rootfs = os.path.abspath(text)
        passwd, group = flatten.read_account_files(rootfs)
        return Source("dir", rootfs, rootfs=rootfs, passwd=passwd, group=group)
    if os.path.exists(text):
        from rootless.images import archive
        debug(f"{text}: an archive, loaded into the store {store.root}")
        record = archive.load(store, text)[0][0]
        return _image(store, record, os.path.abspath(text))
    try:
        record = store.find(text)
    except ImageError as missing:
        if text.startswith(("/", ".")):
            raise ImageError(f"{text}: no such file or directory") from None
        record = _pull(store, text, missing, debug, quiet)
    return _image(store, record, text)


def _pull(store, text: str, missing: ImageError, debug, quiet: bool) -> dict:
    from rootless.images import pull
    debug(f"{missing}: pulling it")
    try:
        record, notes, _ = pull.pull(store, text, progress=not quiet and sys.stderr.isatty(), debug=debug)
    except ImageError as err:
        raise ImageError(f"no image {text} in the store {store.root}, and pulling it failed: {err}") from None
    for note in notes:
        debug(note)
    return record


def _image(store, record: dict, shown: str) -> Source:
    from rootless.images.image import image_config
    layers = [store.layer_path(layer["diffID"]) for layer in record["layers"]]
    missing = [path for path in layers if not os.path.isdir(path)]
    if missing:
        raise ImageError(f"layer {os.path.basename(missing[0])} of {record['name']} is missing from the store "
                         f"{store.root}: pull or load the image again")
    passwd, group = _account_files(layers)
    return Source("image", shown, image_id=record["config"], config=image_config(store, record), layers=layers,
                  passwd=passwd, group=group, name=record["name"])


def _account_files(layers: list[str]) -> tuple[str, str]:
    """/etc/passwd and /etc/group as the top-most layer that has them says (no flattening)."""
    from rootless.images import flatten
    found = ["", ""]
    for layer in reversed(layers):
        passwd, group = flatten.read_account_files(layer)
        found = [found[0] or passwd, found[1] or group]
        if all(found):
            break
    return found[0], found[1]


def host_layout(root: str = "/") -> tuple[dict[str, str], list[str]]:
    """The host's merged-/usr symlinks (bin -> usr/bin) and the top directories that are real
    directories instead (an unmerged host), among MERGED_USR."""
    links, dirs = {}, []
    for name in MERGED_USR:
        path = os.path.join(root, name)
        if os.path.islink(path):
            links[name] = os.readlink(path)
        elif os.path.isdir(path):
            dirs.append("/" + name)
    return links, dirs
