"""rlx and the image store, as the unprivileged test user: pulls from a real registry on
127.0.0.1 (Debian's docker-registry, filled with skopeo from images built here), archives,
bundles run by rootless and by runc, and what is refused. Nothing comes from the internet."""

import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers.images import LocalRegistry, have_registry_tools, member, rootfs_layer, tar_layer, write_oci_layout
from helpers.rlx import Rlx
from helpers.users import User, chown_tree, clean_env, command_as, subordinate_range

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run rlx as the test user")

APP_SCRIPT = ("id; ls -ln /srv /bin/su-test /opt; stat -c '%h %i' /srv/www /srv/hard | sort -u | wc -l; "
              "ls /etc; cat /srv/www; pwd; echo FOO=$FOO")


# vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW (bit 13)
CAP_NET_RAW_V2 = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")


def app_layer() -> bytes:
    """What the tests check file by file: owners, modes, setuid, a hard link, xattrs, a device
    node, whiteouts of the base layer's files and an opaque directory."""
    www, data = member("srv/www", data=b"hello from 33\n", uid=33, gid=33, mode=0o640)
    www.pax_headers = {"SCHILY.xattr.user.rlx": "kept"}
    capped, capped_data = member("bin/capped", data=b"#!/bin/sh\n", mode=0o755)
    capped.pax_headers = {"SCHILY.xattr.security.capability": CAP_NET_RAW_V2.decode("utf-8", "surrogateescape")}
    return tar_layer([
        (capped, capped_data),
        member("srv", tarfile.DIRTYPE, uid=33, gid=33, mode=0o750),
        (www, data),
        member("srv/hard", tarfile.LNKTYPE, linkname="srv/www", uid=33, gid=33, mode=0o640),
        member("bin/su-test", data=b"#!/bin/sh\n", mode=0o4755),
        member("etc/.wh.motd"),
        member("opt", tarfile.DIRTYPE),
        member("opt/.wh..wh..opq"),
        member("opt/new", data=b"new\n"),
        member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        member("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/srv:/bin/sh\n"),
        member("etc/group", data=b"root:x:0:\nwww-data:x:33:\nweb:x:1200:www-data\n"),
    ])


APP_CONFIG = {"config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": [APP_SCRIPT], "Env": ["FOO=bar"],
                         "WorkingDir": "/srv", "User": "www-data", "Labels": {"org.example": "yes"},
                         "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}}}}


@pytest.fixture(scope="session")
def layers(busybox_rootfs: Path) -> dict[str, bytes]:
    base = rootfs_layer(busybox_rootfs, [member("etc/motd", data=b"motd\n"), member("opt", tarfile.DIRTYPE),
                                         member("opt/old", data=b"old\n")])
    return {"base": base, "app": app_layer()}


@pytest.fixture(scope="session")
def images_dir(scratch_root: Path, layers) -> Path:
    """OCI layouts: `base` (one layer) and `app` (base + app), sharing the base layer. Once per
    session: test_rlx_run uses them too (pytest keeps an instance per module that names the
    fixture), and skopeo refuses to overwrite an archive: made once, then found."""
    folder = scratch_root / "images"
    if (folder / "app.docker.tar").exists():
        return folder
    write_oci_layout(folder / "base", [layers["base"]], {"config": {"Cmd": ["/bin/sh"]}})
    write_oci_layout(folder / "app", [layers["base"], layers["app"]], APP_CONFIG)
    write_oci_layout(folder / "app-zstd", [layers["base"], layers["app"]], APP_CONFIG, compress="zstd")
    for name in ("app.oci.tar", "app.docker.tar"):
        kind = "oci-archive" if "oci" in name else "docker-archive"
        target = f"{kind}:{folder / name}" + (":localhost/app-docker:latest" if kind == "docker-archive" else "")
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci:{folder / 'app'}:latest", target],
                       check=True, capture_output=True)
    for path in folder.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(folder, 0o755)
    return folder


@pytest.fixture
def rlx(rootless_runtime, test_user: User) -> Rlx:
    binary = os.path.join(os.path.dirname(rootless_runtime.binary), "rlx")
    home = rootless_runtime.work_dir / "home"
    home.mkdir()
    yield Rlx(test_user, binary, home)
    # The store holds subordinate-owned files: rlx removes them in the user namespace.
    subprocess.run(command_as(test_user, [binary, "--store", str(home / "store"), "rmi", "--all"]),
                   capture_output=True, env=clean_env(test_user, {"HOME": str(home)}))


@pytest.fixture(scope="module")
def registry(scratch_root: Path, images_dir: Path):
    missing = have_registry_tools()
    if missing:
        pytest.skip(f"{missing} missing (tests/run installs them)")
    reg = LocalRegistry(scratch_root / "registry")
    reg.push(f"oci:{images_dir / 'base'}:latest", "base:1")
    reg.push(f"oci:{images_dir / 'app'}:latest", "app:1")
    yield reg
    reg.stop()


def run_bundle(runtime, bundle: Path) -> str:
    container_id = runtime.new_id("img")
    result = runtime.run("run", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    runtime.assert_no_leaks(container_id, bundle=bundle)
    return result.stdout


def check_app_output(out: str) -> None:
    """What the app image shows inside a container: file by file."""
    lines = out.splitlines()
    assert lines[0].startswith("uid=33(www-data) gid=33(www-data)"), out
    assert any(line.split()[2:4] == ["33", "33"] and line.endswith(" hard") and line.split()[1] == "2" for line in lines), out
    assert any(line.startswith("-rw-r-----") and line.endswith(" www") for line in lines), out
    assert any(line.startswith("-rwsr-xr-x") and line.split()[2:4] == ["0", "0"] for line in lines), out
    assert any(line.endswith(" new") for line in lines), out
    assert not any(line.endswith(" old") for line in lines), "opaque /opt hides the base layer's files"
    assert "1" in lines, "the hard link shares its inode"
    assert "motd" not in lines and "passwd" in lines, "the whiteout removed /etc/motd"
    assert "hello from 33" in lines and "/srv" in lines and "FOO=bar" in lines


def check_bundle(rlx: Rlx, bundle: Path) -> None:
    """On the host: owners are the subordinate IDs the container maps; xattrs kept; devices skipped."""
    config = json.loads((bundle / "config.json").read_text())
    start = subordinate_range(rlx.user).start
    assert config["linux"]["uidMappings"][0] == {"containerID": 0, "hostID": rlx.user.uid, "size": 1}
    assert config["linux"]["uidMappings"][1]["hostID"] == start
    assert config["process"]["user"] == {"uid": 33, "gid": 33}  # no additionalGids: runc refuses them rootless
    assert config["process"]["cwd"] == "/srv" and "FOO=bar" in config["process"]["env"]
    assert config["annotations"]["org.example"] == "yes"
    assert config["annotations"]["org.opencontainers.image.stopSignal"] == "SIGQUIT"
    assert config["annotations"]["org.opencontainers.image.exposedPorts"] == "80/tcp"
    www = (bundle / "rootfs/srv/www").stat()
    assert (www.st_uid, www.st_gid) == (start + 32, start + 32)
    assert (bundle / "rootfs/bin/busybox").stat().st_uid == rlx.user.uid
    assert os.getxattr(bundle / "rootfs/srv/www", "user.rlx") == b"kept"
    # The file capability, written by root of the user namespace, is namespaced (revision 3):
    # the same bits, valid only where the caller is root (its rootid).
    cap = os.getxattr(bundle / "rootfs/bin/capped", "security.capability")
    assert cap[:4] == bytes.fromhex("01000003") and cap[4:20] == CAP_NET_RAW_V2[4:]
    assert int.from_bytes(cap[20:24], "little") == rlx.user.uid
    assert not (bundle / "rootfs/dev/null").exists()


def test_pull_shares_layers_and_bundles_run_under_rootless_and_runc(rlx: Rlx, registry: LocalRegistry,
                                                                    rootless_runtime) -> None:
    rlx.registries(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    first = rlx.run("--debug", "pull", f"{registry.host}/base:1")
    assert "1 unpacked now" in first.stderr
    second = rlx.run("--debug", "pull", f"{registry.host}/app:1")
    assert "1 already in the store" in second.stderr and "1 unpacked now" in second.stderr, second.stderr
    assert len(rlx.layer_dirs()) == 2, "the shared base layer is unpacked once"
    listed = json.loads(rlx.run("images", "--format", "json").stdout)
    assert sorted(row["name"] for row in listed) == [f"{registry.host}/app:1", f"{registry.host}/base:1"]
    inspected = json.loads(rlx.run("inspect", "app:1").stdout)[0]  # podman's array, one entry per name
    assert inspected["config"]["config"]["User"] == "www-data" and len(inspected["manifest"]["layers"]) == 2

    bundle = rlx.home / "bundle"
    rlx.run("bundle", "app:1", bundle)
    check_bundle(rlx, bundle)
    check_app_output(run_bundle(rootless_runtime, bundle))

    runc = shutil.which("runc")
    if runc:
        result = subprocess.run(command_as(rlx.user, [runc, "--root", str(rlx.home / "runc"), "run", "--bundle",
                                                      str(bundle), rootless_runtime.new_id("runc")]),
                                capture_output=True, text=True, env=rlx.env, timeout=60)
        assert result.returncode == 0, result.stderr
        check_app_output(result.stdout)

    rlx.run("rmi", "app:1")
    assert len(rlx.layer_dirs()) == 1, "rmi prunes the layer only app used"
    assert json.loads(rlx.run("images", "--format", "json").stdout)[0]["name"] == f"{registry.host}/base:1"


def test_short_names_resolve_through_registries_conf(rlx: Rlx, registry: LocalRegistry) -> None:
    rlx.registries(f'unqualified-search-registries = ["{registry.host}"]\n[aliases]\n"shorty" = "{registry.host}/base"\n'
                   f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    assert rlx.run("pull", "-q", "shorty:1").stdout.startswith(f"{registry.host}/base:1 ")
    assert rlx.run("pull", "-q", "app:1").stdout.startswith(f"{registry.host}/app:1 ")


def test_pull_without_insecure_is_refused_in_one_line(rlx: Rlx, registry: LocalRegistry) -> None:
    result = rlx.run("pull", f"{registry.host}/base:1", check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and result.stderr.startswith("rlx: "), result.stderr


def test_pull_with_basic_auth(rlx: Rlx, scratch_root: Path, images_dir: Path) -> None:
    if have_registry_tools():
        pytest.skip(f"{have_registry_tools()} missing")
    reg = LocalRegistry(scratch_root / f"registry-auth-{os.getpid()}", htpasswd=("tester", "s3cret"))
    try:
        reg.push(f"oci:{images_dir / 'base'}:latest", "private/base:1")
        rlx.registries(f'[[registry]]\nlocation = "{reg.host}"\ninsecure = true\n')
        denied = rlx.run("pull", f"{reg.host}/private/base:1", check=False)
        assert denied.returncode == 1 and "asks for a login" in denied.stderr, denied.stderr
        rlx.auth(reg.host, "tester", "s3cret")
        rlx.run("pull", f"{reg.host}/private/base:1")
    finally:
        reg.stop()


def test_pull_with_a_bearer_token(rlx: Rlx, scratch_root: Path, images_dir: Path) -> None:
    """The registry's token auth (Docker Hub's flow): 401 with a Bearer challenge, a token
    from the realm fetched with the stored credentials as Basic, the pull with the token."""
    if have_registry_tools() or shutil.which("openssl") is None:
        pytest.skip(f"{have_registry_tools() or 'openssl'} missing")
    from helpers.images import TokenServer
    tokens = TokenServer(scratch_root / f"token-{os.getpid()}", ("tester", "s3cret"))
    reg = LocalRegistry(scratch_root / f"registry-token-{os.getpid()}", token=tokens)
    try:
        reg.push(f"oci:{images_dir / 'base'}:latest", "team/base:1")
        rlx.registries(f'[[registry]]\nlocation = "{reg.host}"\ninsecure = true\n')
        tokens.asked.clear()
        denied = rlx.run("pull", f"{reg.host}/team/base:1", check=False)
        assert denied.returncode == 1 and "token endpoint" in denied.stderr, denied.stderr
        assert tokens.asked == [("repository:team/base:pull", False)]
        rlx.auth(reg.host, "tester", "s3cret")
        rlx.run("pull", f"{reg.host}/team/base:1")
        assert ("repository:team/base:pull", True) in tokens.asked
    finally:
        reg.stop()
        tokens.stop()


def test_a_corrupted_blob_is_refused(rlx: Rlx, scratch_root: Path, images_dir: Path, layers) -> None:
    if have_registry_tools():
        pytest.skip(f"{have_registry_tools()} missing")
    reg = LocalRegistry(scratch_root / f"registry-bad-{os.getpid()}")
    try:
        reg.push(f"oci:{images_dir / 'app'}:latest", "app:1")
        from helpers.images import manifest_layers
        blob = reg.blob_file(manifest_layers(images_dir / "app")[1])
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        rlx.registries(f'[[registry]]\nlocation = "{reg.host}"\ninsecure = true\n')
        result = rlx.run("pull", f"{reg.host}/app:1", check=False)
        assert result.returncode == 1 and "refused" in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert json.loads(rlx.run("images", "--format", "json").stdout) == []
        assert rlx.layer_dirs() == [] or len(rlx.layer_dirs()) <= 1  # the base may be in; never the bad one
        bad = manifest_layers(images_dir / "app")[1][7:]
        assert not (rlx.store / "blobs/sha256" / bad).exists()
    finally:
        reg.stop()


@pytest.mark.parametrize("archive", ["app", "app-zstd", "app.oci.tar", "app.docker.tar"])
def test_archives_load_and_run_file_by_file(rlx: Rlx, images_dir: Path, rootless_runtime, archive: str) -> None:
    loaded = rlx.run("load", images_dir / archive, "--name", "localhost/loaded:1")
    assert loaded.stdout.startswith("localhost/loaded:1 "), loaded.stdout
    assert "device node(s) skipped" in loaded.stderr
    bundle = rlx.home / "bundle"
    rlx.run("bundle", "loaded:1", bundle)
    check_bundle(rlx, bundle)
    check_app_output(run_bundle(rootless_runtime, bundle))


def test_a_docker_archive_keeps_its_names(rlx: Rlx, images_dir: Path) -> None:
    assert rlx.run("load", images_dir / "app.docker.tar").stdout.startswith("localhost/app-docker:latest ")


def test_a_rootfs_tarball_loads_as_one_layer(rlx: Rlx, busybox_rootfs_tar: Path, rootless_runtime) -> None:
    rlx.run("load", busybox_rootfs_tar, "--name", "localhost/plain:1")
    bundle = rlx.home / "bundle"
    rlx.run("bundle", "plain:1", bundle)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["sh", "-c", "id -u; ls /bin/busybox"]
    (bundle / "config.json").write_text(json.dumps(config))
    assert run_bundle(rootless_runtime, bundle).split() == ["0", "/bin/busybox"]


@pytest.mark.parametrize("members", [
    [member("../../escape-rlx", data=b"x")],
    [member("/escape-rlx-abs", data=b"x")],
    [member("up", tarfile.SYMTYPE, linkname="/tmp"), member("up/escape-rlx", data=b"x")],
], ids=["dotdot", "absolute", "symlink"])
def test_path_traversal_archives_are_refused(rlx: Rlx, members) -> None:
    bad = rlx.home / "bad.tar"
    bad.write_bytes(tar_layer([member("ok", data=b"fine")] + members))
    chown_tree(bad, rlx.user)
    result = rlx.run("load", bad, check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "refused" in result.stderr, result.stderr
    assert not Path("/tmp/escape-rlx").exists() and not Path("/escape-rlx-abs").exists()
    assert not list(rlx.home.rglob("escape-rlx*"))
    assert rlx.layer_dirs() == [] and os.listdir(rlx.store / "tmp") == []


def test_a_decompression_bomb_is_refused(rlx: Rlx) -> None:
    import gzip
    bomb = rlx.home / "bomb.tar.gz"
    bomb.write_bytes(gzip.compress(tar_layer([member("zeros", data=bytes(64 << 20))])))
    chown_tree(bomb, rlx.user)
    result = rlx.run("load", bomb, check=False, env={"RLX_MAX_LAYER_SIZE": "16M"})
    assert result.returncode == 1 and "decompression bomb" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert rlx.layer_dirs() == [] and os.listdir(rlx.store / "tmp") == []


def test_prune_removes_what_a_killed_unpack_left(rlx: Rlx, images_dir: Path) -> None:
    rlx.run("load", images_dir / "base", "--name", "localhost/b:1")
    leftover = rlx.store / "tmp" / "layer-killed"
    subprocess.run(command_as(rlx.user, ["mkdir", "-p", str(leftover / "half")]), check=True)
    assert "1 leftovers" in rlx.run("prune").stdout
    assert os.listdir(rlx.store / "tmp") == [] and len(rlx.layer_dirs()) == 1


OVERLAY_PROBE = """
import json, os, sys
from rootless.images.store import Store
from rootless.images import overlay, userns

store = Store(sys.argv[1])
record = store.find("loaded:1")
layers = [store.layer_path(layer["diffID"]) for layer in record["layers"]]
work = sys.argv[2]

def probe():
    target = os.path.join(work, "root")
    method = overlay.mount_root(layers, os.path.join(work, "upper"), os.path.join(work, "work"), target)
    www = os.stat(os.path.join(target, "srv/www"))
    with open(os.path.join(target, "srv/written"), "w") as f:
        f.write("mine")
    os.unlink(os.path.join(target, "etc/passwd"))
    return {"method": method, "etc": sorted(os.listdir(os.path.join(target, "etc"))),
            "opt": sorted(os.listdir(os.path.join(target, "opt"))), "www": [www.st_uid, www.st_gid, www.st_mode & 0o7777],
            "su": os.stat(os.path.join(target, "bin/su-test")).st_mode & 0o7777}

print(json.dumps(userns.run_as_mapped_root(store.idmap(), probe, unshare_mount=True)))
"""


def test_an_overlay_of_the_layers_in_the_user_namespace(rlx: Rlx, images_dir: Path, rootless_runtime) -> None:
    """The container's root as an overlay mounted with userxattr by root of the user
    namespace: whiteouts hide, opaque directories hide, owners read as in the image, writes
    land in the upper directory and never in the store's layers."""
    rlx.run("load", images_dir / "app", "--name", "localhost/loaded:1")
    work = rlx.home / "ovl"
    work.mkdir()
    chown_tree(work, rlx.user)
    python = os.path.join(os.path.dirname(rlx.binary), "python")
    result = subprocess.run(command_as(rlx.user, [python, "-c", OVERLAY_PROBE, str(rlx.store), str(work)]),
                            capture_output=True, text=True, env=rlx.env, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["method"] == "overlay", seen
    assert "motd" not in seen["etc"] and "passwd" not in seen["etc"] and "group" in seen["etc"]
    assert seen["opt"] == ["new"] and seen["www"] == [33, 33, 0o640] and seen["su"] == 0o4755
    assert (work / "upper/srv/written").read_text() == "mine"
    whiteout = (work / "upper/etc/passwd").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0, "the deletion is a whiteout in the upper dir"
    assert not any((Path(rlx.store) / "layers" / d / "srv/written").exists() for d in rlx.layer_dirs())


SAME_VIEW = "ls -ln / | awk 'NR > 1 && $NF !~ /^(dev|proc|sys|run|etc)$/ {print $1, $3, $4, $NF}'; ls -ln /srv; id -u; id -g"


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is missing (tests/run installs it)")
def test_podman_save_loads_and_runs_as_under_podman(rlx: Rlx, images_dir: Path, rootless_runtime, scratch_root) -> None:
    """A multi-layer image loaded into podman and saved by it (`podman save`, docker-archive)
    shows the same tree and IDs under rlx bundle + rootless as under podman's own run (runc).
    /dev, /proc, /sys, /run and /etc are left out: podman mounts or writes into them."""
    import tempfile
    from test_podman import Podman
    home = Path(tempfile.mkdtemp(prefix="podman-save-", dir=scratch_root))
    os.chmod(home, 0o755)
    client = Podman(rlx.user, shutil.which("runc") or rootless_runtime.binary, home)
    try:
        client("load", "-i", str(images_dir / "app.docker.tar"), check=True)
        client("save", "-o", str(home / "saved.tar"), "localhost/app-docker:latest", check=True)
        seen_by_podman = client("run", "--rm", "--network", "none", "localhost/app-docker:latest", SAME_VIEW,
                                check=True).stdout
        rlx.run("load", home / "saved.tar", "--name", "localhost/saved:1")
        bundle = rlx.home / "bundle"
        rlx.run("bundle", "saved:1", bundle)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = ["/bin/sh", "-c", SAME_VIEW]
        (bundle / "config.json").write_text(json.dumps(config))
        seen_by_rlx = run_bundle(rootless_runtime, bundle)
        assert seen_by_rlx == seen_by_podman
        assert seen_by_rlx.endswith("33\n33\n") and "drwxr-x--- 33 33 srv" in seen_by_rlx
    finally:
        client("rm", "--all", "--force")
        subprocess.run(command_as(rlx.user, ["podman", "unshare", "rm", "-rf", str(home / "storage"), str(client.runroot)]),
                       env=client.env, capture_output=True, cwd=home)


def test_a_killed_load_leaves_nothing_a_later_load_trusts(rlx: Rlx, scratch_root: Path, busybox_rootfs: Path,
                                                          rootless_runtime) -> None:
    """rlx load killed (SIGKILL) at several points: the next load of the same archive succeeds,
    runs, and prune removes what the killed ones left."""
    import random
    import signal
    import time
    layout = scratch_root / f"big-{os.getpid()}"
    if not layout.exists():
        rng = random.Random(7)
        files = [member(f"data/f{i:04d}", data=rng.randbytes(32768)) for i in range(400)]
        write_oci_layout(layout, [rootfs_layer(busybox_rootfs), tar_layer(files), tar_layer(files[:200])],
                         {"config": {"Cmd": ["/bin/sh", "-c", "ls /data | wc -l"]}})
        for path in [layout, *layout.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    for delay in (0.3, 0.8, 1.5):
        argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "load", str(layout), "--name", "localhost/big:1"])
        proc = subprocess.Popen(argv, env=rlx.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    rlx.run("load", layout, "--name", "localhost/big:1")
    bundle = rlx.home / "bundle"
    rlx.run("bundle", "big:1", bundle)
    assert run_bundle(rootless_runtime, bundle).strip() == "400"
    rlx.run("prune")
    assert os.listdir(rlx.store / "tmp") == [] and len(rlx.layer_dirs()) == 3
