"""`rlx run --userns keep-id` as the unprivileged test user: the image's files keep their own
owners, modes, setuid bits and file capabilities inside (a chowned copy of the layers per ID
map, cached in the store, removed by rmi), the caller keeps their UID, volumes are theirs; and
the copy a kernel's refusal of the overlay falls back to."""

import os
import struct
import tarfile
from pathlib import Path

import pytest

from helpers.images import member, rootfs_layer, tar_layer, write_oci_layout
from helpers.users import subordinate_range
from test_images import Rlx, layers  # noqa: F401 - fixtures
from test_rlx_run import leftovers, rlx  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run rlx as the test user")

# vfs_cap_data revision 2, effective, permitted = CAP_NET_BIND_SERVICE (bit 10)
CAP_NET_BIND_SERVICE_V2 = bytes.fromhex("01000002" "00040000" "00000000" "00000000" "00000000")

CHECKED = ["/srv/rootfile", "/srv/owned", "/srv/hard", "/srv/link", "/srv/dir", "/bin/suid", "/bin/sgid",
           "/srv/capped", "/srv/fifo"]
SCRIPT = ("id -u; for f in " + " ".join(CHECKED) + "; do stat -c '%n %u:%g %a %h' $f; done; "
          "ls /opt; test -e /etc/motd && echo motd || echo no-motd")


@pytest.fixture(scope="session")
def owners_image(scratch_root: Path, busybox_rootfs: Path) -> Path:
    folder = scratch_root / "owners-image"
    if folder.exists():
        return folder
    base = rootfs_layer(busybox_rootfs, [member("etc/motd", data=b"motd\n"), member("opt", tarfile.DIRTYPE),
                                         member("opt/old", data=b"old\n")])
    capped, capped_data = member("srv/capped", data=b"#!/bin/sh\n", mode=0o755)
    capped.pax_headers = {"SCHILY.xattr.security.capability": CAP_NET_BIND_SERVICE_V2.decode("utf-8", "surrogateescape")}
    owned, owned_data = member("srv/owned", data=b"1234\n", uid=1234, gid=2345, mode=0o640)
    owned.pax_headers = {"SCHILY.xattr.user.note": "kept"}
    top = tar_layer([
        member("srv", tarfile.DIRTYPE),
        member("srv/rootfile", data=b"root\n"),
        (owned, owned_data),
        member("srv/hard", tarfile.LNKTYPE, linkname="srv/owned", uid=1234, gid=2345, mode=0o640),
        member("srv/link", tarfile.SYMTYPE, linkname="owned", uid=1234, gid=2345, mode=0o777),
        member("srv/dir", tarfile.DIRTYPE, uid=1234, gid=2345, mode=0o750),
        member("srv/fifo", tarfile.FIFOTYPE, uid=1234, gid=0, mode=0o620),
        member("bin/suid", data=b"#!/bin/sh\n", mode=0o4755),
        member("bin/sgid", data=b"#!/bin/sh\n", uid=1234, gid=2345, mode=0o2750),
        (capped, capped_data),
        member("etc/.wh.motd"),
        member("opt", tarfile.DIRTYPE),
        member("opt/.wh..wh..opq"),
        member("opt/new", data=b"new\n"),
    ])
    write_oci_layout(folder, [base, top], {"config": {"Cmd": ["/bin/sh"]}})
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return folder


EXPECTED = ["/srv/rootfile 0:0 644 1", "/srv/owned 1234:2345 640 2", "/srv/hard 1234:2345 640 2",
            "/srv/link 1234:2345 777 1", "/srv/dir 1234:2345 750 2", "/bin/suid 0:0 4755 1",
            "/bin/sgid 1234:2345 2750 1", "/srv/capped 0:0 755 1", "/srv/fifo 1234:0 620 1", "new", "no-motd"]


def capability_root(path: Path) -> int:
    """The root ID a file capability is bound to (host IDs: read from the initial namespace)."""
    value = os.getxattr(path, "security.capability", follow_symlinks=False)
    assert struct.unpack_from("<I", value)[0] >> 24 == 3, value.hex()
    assert value[4:8] == CAP_NET_BIND_SERVICE_V2[4:8], value.hex()
    return struct.unpack_from("<I", value, 20)[0]


def test_keep_id_shows_the_images_own_owners(rlx: Rlx, owners_image: Path) -> None:  # noqa: F811
    rlx.run("load", owners_image, "--name", "localhost/owners:1")
    plain = rlx.run("run", "--rm", "--network", "none", "localhost/owners:1", "/bin/sh", "-c", SCRIPT)
    assert plain.stdout.splitlines() == ["0"] + EXPECTED, plain.stdout
    first = rlx.run("--debug", "run", "--rm", "--network", "none", "--userns", "keep-id", "localhost/owners:1",
                    "/bin/sh", "-c", SCRIPT)
    assert first.stdout.splitlines() == [str(rlx.user.uid)] + EXPECTED, first.stdout
    assert "keep-id: 2 of 2 layers copied and chowned" in first.stderr, first.stderr
    copies = sorted((rlx.store / "mapped").glob("*/*"))
    assert [c.name for c in copies] == sorted(rlx.layer_dirs()), copies
    before = {c: (c.stat().st_ino, c.stat().st_mtime_ns) for c in copies}

    # the capability moves with root: the store's root is the caller, keep-id's the first subordinate ID
    top = next(c for c in copies if (c / "srv").exists())
    assert capability_root(rlx.store / "layers" / top.name / "srv/capped") == rlx.user.uid
    assert capability_root(top / "srv/capped") == subordinate_range(rlx.user).start

    again = rlx.run("--debug", "run", "--rm", "--network", "none", "--userns", "keep-id", "-u", "1234",
                    "localhost/owners:1", "/bin/sh", "-c", "id -u; stat -c '%u:%g' /srv/owned; echo x > /srv/dir/x")
    assert again.stdout.splitlines() == ["1234", "1234:2345"], again.stdout
    assert "layers' copies for map" in again.stderr and "copied and chowned" not in again.stderr, again.stderr
    assert {c: (c.stat().st_ino, c.stat().st_mtime_ns) for c in copies} == before, "the copies were made again"
    assert not (top / "srv/dir/x").exists(), "a container wrote into the store's copy"
    assert leftovers(rlx) == []

    rlx.run("rmi", "localhost/owners:1")
    assert list((rlx.store / "mapped").iterdir()) == [], "rmi left the chowned copies behind"
    assert os.listdir(rlx.store / "tmp") == []


def test_keep_id_volumes_belong_to_the_caller(rlx: Rlx, owners_image: Path) -> None:  # noqa: F811
    rlx.run("load", owners_image, "--name", "localhost/owners:1")
    host_dir = rlx.home / "shared"
    host_dir.mkdir()
    os.chown(host_dir, rlx.user.uid, rlx.user.gid)
    seen = rlx.run("run", "--rm", "--network", "none", "--userns", "keep-id", "-v", f"{host_dir}:/data",
                   "-v", "kept:/kept", "localhost/owners:1", "/bin/sh", "-c",
                   "stat -c '%u:%g' /data /kept; echo a > /data/a; echo b > /kept/b")
    own = f"{rlx.user.uid}:{rlx.user.gid}"
    assert seen.stdout.splitlines() == [own, own], seen.stdout
    for path in (host_dir / "a", rlx.store / "volumes/kept/_data/b"):
        assert (path.stat().st_uid, path.stat().st_gid) == (rlx.user.uid, rlx.user.gid), path
    assert leftovers(rlx) == []


def test_a_refused_overlay_falls_back_to_a_copy(rlx: Rlx, owners_image: Path) -> None:  # noqa: F811
    """An overlay option the kernel does not know: a real refusal, from the container's init."""
    rlx.run("load", owners_image, "--name", "localhost/owners:1")
    refused = {"RLX_OVERLAY_OPTIONS": "rlx_no_such_option"}
    quiet = rlx.run("run", "--rm", "--network", "none", "localhost/owners:1", "/bin/sh", "-c", SCRIPT, env=refused)
    assert quiet.stdout.splitlines() == ["0"] + EXPECTED and quiet.stderr == "", quiet.stderr
    told = rlx.run("--debug", "run", "--rm", "--network", "none", "--userns", "keep-id", "localhost/owners:1",
                   "/bin/sh", "-c", SCRIPT, env=refused)
    assert told.stdout.splitlines() == [str(rlx.user.uid)] + EXPECTED, told.stdout
    lines = [line for line in told.stderr.splitlines() if "a copy of the layers instead" in line]
    assert len(lines) == 1 and "annotation rootless.overlay" in lines[0], told.stderr
    asked = rlx.run("run", "--rm", "--network", "none", "--userns", "keep-id", "localhost/owners:1",
                    "/bin/sh", "-c", SCRIPT, env={"RLX_ROOTFS": "copy"})
    assert asked.stdout.splitlines() == [str(rlx.user.uid)] + EXPECTED, asked.stdout
    assert leftovers(rlx) == []
