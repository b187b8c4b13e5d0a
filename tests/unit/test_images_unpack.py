"""Layer unpacking, member by member: what is kept (owners, modes, setuid, hard links, long
names, sparse files, xattrs), what whiteouts become, and what is refused (paths out of the
layer, a decompression bomb, a corrupted blob). As root, in-process: the rootless path (the
same code in a user namespace) is in tests/functional/test_images.py."""

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from rootless.images import flatten
from rootless.images.digest import ImageError, digest_of
from rootless.images.unpack import OPAQUE_XATTR, unpack_layer

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to other IDs needs root (or the functional tests)")


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = fields.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def layer(tmp: Path, members, compress: str = "none", fmt=tarfile.PAX_FORMAT) -> tuple[Path, str, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    plain = raw.getvalue()
    blob = gzip.compress(plain) if compress == "gzip" else plain
    if compress == "zstd":
        import zstandard
        blob = zstandard.ZstdCompressor().compress(plain)
    path = tmp / f"layer-{len(list(tmp.iterdir()))}"
    path.write_bytes(blob)
    return path, digest_of(blob), digest_of(plain)


def unpack(tmp: Path, members, **kwargs) -> Path:
    path, digest, diff_id = layer(tmp, members, kwargs.pop("compress", "none"))
    dest = tmp / f"out-{path.name}"
    unpack_layer(str(path), str(dest), digest=digest, diff_id=diff_id, max_bytes=kwargs.pop("max_bytes", 1 << 30),
                 in_userns=kwargs.pop("in_userns", True))
    return dest


@needs_root
@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_owners_modes_setuid_links_and_long_names_are_kept(tmp_path: Path, compress: str) -> None:
    long_name = "d/" + "x" * 200 + "/" + "y" * 150
    dest = unpack(tmp_path, [
        member("d", tarfile.DIRTYPE, uid=33, gid=44, mode=0o750),
        member("d/su", data=b"#!/bin/sh\n", uid=0, gid=0, mode=0o4755),
        member("d/www", data=b"hello", uid=33, gid=33, mode=0o640),
        member("d/hard", tarfile.LNKTYPE, linkname="d/www", uid=33, gid=33, mode=0o640),
        member("d/sym", tarfile.SYMTYPE, linkname="/etc/passwd"),
        member(long_name, data=b"long"),
        member("fifo", tarfile.FIFOTYPE, mode=0o600),
    ], compress=compress)
    st = (dest / "d").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (33, 44, 0o750)
    assert stat.S_IMODE((dest / "d/su").stat().st_mode) == 0o4755
    www = (dest / "d/www").stat()
    assert (www.st_uid, www.st_gid, www.st_nlink) == (33, 33, 2)
    assert (dest / "d/hard").stat().st_ino == www.st_ino
    assert os.readlink(dest / "d/sym") == "/etc/passwd"
    assert (dest / long_name).read_bytes() == b"long"
    assert stat.S_ISFIFO((dest / "fifo").lstat().st_mode)


@needs_root
def test_xattrs_and_file_capabilities_are_kept(tmp_path: Path) -> None:
    cap = bytes.fromhex("0000000201000000000000000000000000000000")  # cap_net_bind... v2 (CAP 10? any bits)
    info, data = member("ping", data=b"\x7fELF", mode=0o755)
    info.pax_headers = {"SCHILY.xattr.user.note": "kept", "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
    dest = unpack(tmp_path, [(info, data)])
    assert os.getxattr(dest / "ping", "user.note") == b"kept"
    assert os.getxattr(dest / "ping", "security.capability") == cap


def test_sparse_files_keep_their_holes(tmp_path: Path) -> None:
    source = tmp_path / "sparse"
    with open(source, "wb") as f:
        f.seek(64 << 20)
        f.write(b"end")
    tar_path = tmp_path / "sparse.tar"
    import subprocess
    subprocess.run(["tar", "-C", str(tmp_path), "--sparse", "--format=pax", "-cf", str(tar_path), "sparse"], check=True)
    blob = tar_path.read_bytes()
    dest = tmp_path / "out"
    unpack_layer(str(tar_path), str(dest), digest=digest_of(blob), diff_id=digest_of(blob), max_bytes=1 << 30)
    st = (dest / "sparse").stat()
    assert st.st_size == (64 << 20) + 3
    assert st.st_blocks * 512 < 1 << 20, "the hole was written out"
    with open(dest / "sparse", "rb") as f:
        f.seek(64 << 20)
        assert f.read() == b"end"


def test_whiteouts_become_overlay_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    dest = unpack(tmp_path, [
        member("etc", tarfile.DIRTYPE),
        member("etc/.wh.motd"),
        member("opt", tarfile.DIRTYPE),
        member("opt/.wh..wh..opq"),
        member("opt/new", data=b"new"),
    ])
    st = (dest / "etc/motd").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not (dest / "etc/.wh.motd").exists()
    assert os.getxattr(dest / "opt", OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(dest / "opt")) == ["new"]


def test_flatten_applies_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    lower = unpack(tmp_path, [member("etc", tarfile.DIRTYPE), member("etc/motd", data=b"hi"), member("etc/keep", data=b"k"),
                              member("opt", tarfile.DIRTYPE), member("opt/old", data=b"old"),
                              member("a", data=b"1"), member("b", tarfile.LNKTYPE, linkname="a")])
    upper = unpack(tmp_path, [member("etc", tarfile.DIRTYPE), member("etc/.wh.motd"),
                              member("opt", tarfile.DIRTYPE), member("opt/.wh..wh..opq"), member("opt/new", data=b"n")])
    root = tmp_path / "flat"
    flatten.flatten([str(lower), str(upper)], str(root))
    assert sorted(os.listdir(root / "etc")) == ["keep"]
    assert sorted(os.listdir(root / "opt")) == ["new"]
    assert (root / "a").stat().st_ino == (root / "b").stat().st_ino
    assert (root / "a").stat().st_ino != (lower / "a").stat().st_ino, "the rootfs must not share inodes with the store"


def test_device_nodes_are_skipped_with_a_note(tmp_path: Path) -> None:
    path, digest, diff_id = layer(tmp_path, [member("dev", tarfile.DIRTYPE),
                                             member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)])
    notes = unpack_layer(str(path), str(tmp_path / "out"), digest=digest, diff_id=diff_id, max_bytes=1 << 20)
    assert not (tmp_path / "out/dev/null").exists()
    assert notes and "device node" in notes[0]


@pytest.mark.parametrize("members, said", [
    ([member("../escape", data=b"x")], "climbs out"),
    ([member("a/../../escape", data=b"x")], "climbs out"),
    ([member("/abs", data=b"x")], "absolute path"),
    ([member("link", tarfile.SYMTYPE, linkname="/tmp"), member("link/escape", data=b"x")], "passes through the symlink"),
    ([member("link", tarfile.SYMTYPE, linkname=".."), member("link/escape", data=b"x")], "passes through the symlink"),
    ([member("h", tarfile.LNKTYPE, linkname="../../etc/passwd")], "climbs out"),
    ([member("h", tarfile.LNKTYPE, linkname="/etc/passwd")], "absolute path"),
    ([member("l", tarfile.SYMTYPE, linkname="/etc"), member("h", tarfile.LNKTYPE, linkname="l/passwd")],
     "passes through the symlink"),
], ids=["dotdot", "inner-dotdot", "absolute", "symlink-abs", "symlink-rel", "hardlink-dotdot", "hardlink-abs",
        "hardlink-via-symlink"])
def test_paths_out_of_the_layer_are_refused(tmp_path: Path, members, said: str) -> None:
    outside = tmp_path.parent / "escape"
    with pytest.raises(ImageError, match=said) as caught:
        unpack(tmp_path, members)
    assert "\n" not in str(caught.value)
    assert not outside.exists() and not (Path("/tmp") / "escape").exists()


def test_a_decompression_bomb_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="decompression bomb"):
        unpack(tmp_path, [member("zeros", data=bytes(8 << 20))], compress="gzip", max_bytes=1 << 20)


def test_a_corrupted_blob_is_refused(tmp_path: Path) -> None:
    path, digest, diff_id = layer(tmp_path, [member("f", data=b"x" * 1000)])
    data = bytearray(path.read_bytes())
    data[600] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="does not match its digest"):
        unpack_layer(str(path), str(tmp_path / "out"), digest=digest, diff_id=diff_id, max_bytes=1 << 20)
