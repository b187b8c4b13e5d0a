"""`rlx bundle IMAGE DIR`: a runtime bundle (DIR/rootfs + DIR/config.json) from a stored image.

The rootfs is a flattened copy, not an overlay: any runtime, runc included, runs it as the
same user without mounting anything first. Its config.json carries the user namespace with the
very map the layers were unpacked with, so root in the image is root in the container and UID
33 stays 33.
"""

import json
import os

from rootless.images import flatten, runspec, userns
from rootless.images.digest import ImageError
from rootless.images.image import image_config
from rootless.images.store import Store


def make_bundle(store: Store, ref: str, dest: str) -> dict:
    with store.lock("store", exclusive=False):
        record = store.find(ref)
        config = image_config(store, record)
        layers = [store.layer_path(layer["diffID"]) for layer in record["layers"]]
        missing = [path for path in layers if not os.path.isdir(path)]
        if missing:
            raise ImageError(f"layer {os.path.basename(missing[0])} of {record['name']} is missing from the store: "
                             "pull or load the image again")
        rootfs = os.path.join(dest, "rootfs")
        os.makedirs(dest, mode=0o755, exist_ok=True)
        if os.path.exists(rootfs) and os.listdir(rootfs):
            raise ImageError(f"{rootfs} exists and is not empty: give a new directory")
        if os.path.exists(os.path.join(dest, "config.json")):
            raise ImageError(f"{dest}/config.json exists: give a new directory")
        plan = store.idmap()
        passwd, group = userns.run_as_mapped_root(plan, _flatten, layers, rootfs)
    spec = runspec.to_spec(config, passwd, group, userns.plan_to_json(plan) if plan is not None else None)
    spec.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = record["name"]
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(spec, f, indent=2)
    return record


def _flatten(layers: list[str], rootfs: str) -> tuple[str, str]:
    flatten.flatten(layers, rootfs)
    return flatten.read_account_files(rootfs)
