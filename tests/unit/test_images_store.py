"""The store as real root uses (no user namespace: IDs as they are, devices made): load,
share, bundle, rmi and prune, in a temporary directory."""

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from rootless.images import archive
from rootless.images.bundle import make_bundle
from rootless.images.digest import ImageError
from rootless.images.store import Store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the real-root store needs root")


def tar_bytes(entries) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, extra in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            info.mode = extra.pop("mode", 0o755)
            for key, value in extra.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return raw.getvalue()


def test_root_store_load_bundle_rmi_prune(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_bytes([
        ("bin", tarfile.DIRTYPE, b"", {}),
        ("bin/sh", tarfile.REGTYPE, b"#!", {"uid": 7, "gid": 8}),
        ("dev", tarfile.DIRTYPE, b"", {}),
        ("dev/null", tarfile.CHRTYPE, b"", {"devmajor": 1, "devminor": 3, "mode": 0o666}),
        ("etc", tarfile.DIRTYPE, b"", {}),
        ("etc/passwd", tarfile.REGTYPE, b"root:x:0:0::/root:/bin/sh\n", {"mode": 0o644}),
    ]))
    store = Store(str(tmp_path / "store"), rootless=False)
    (record, notes, unpacked), = archive.load(store, str(rootfs), name="localhost/r:1")
    assert unpacked == 1 and notes == [] and store.idmap() is None
    (again, _, unpacked_again), = archive.load(store, str(rootfs), name="localhost/r:2")
    assert unpacked_again == 0 and again["layers"] == record["layers"]
    make_bundle(store, "r:1", str(tmp_path / "bundle"))
    config = json.loads((tmp_path / "bundle/config.json").read_text())
    assert {"type": "user"} not in config["linux"]["namespaces"] and "uidMappings" not in config["linux"]
    assert config["process"]["args"] == ["/bin/sh"]
    sh = (tmp_path / "bundle/rootfs/bin/sh").stat()
    assert (sh.st_uid, sh.st_gid) == (7, 8)
    assert stat.S_ISCHR((tmp_path / "bundle/rootfs/dev/null").lstat().st_mode), "real root keeps device nodes"
    store.remove_name("localhost/r:1")
    assert store.prune()["layers"] == 0, "r:2 still uses the layer"
    store.remove_name("localhost/r:2")
    assert store.prune()["layers"] == 1 and os.listdir(tmp_path / "store/layers") == []
    with pytest.raises(ImageError, match="no image r:1"):
        store.find("r:1")
