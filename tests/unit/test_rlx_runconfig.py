"""rlx run's pure parts: its flags (the fast parser), the flags as config.json changes, the
container records, keep-id maps."""

import os
from urllib.parse import quote as url_quote

import pytest

from rootless.errors import RootlessError, UsageError
from rootless.images.store import quote, unquote
from rootless.rlx import records, runconfig, runflags
from rootless.rlx.runconfig import RunOptions

PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/srv:/bin/sh\n"
GROUP = "root:x:0:\nwww-data:x:33:\n"
IMAGE = {"config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["FOO=bar"], "User": "www-data",
                    "WorkingDir": "/srv", "StopSignal": "SIGQUIT"}}
STORE_MAP = {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                             {"containerID": 1, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                             {"containerID": 1, "hostID": 100000, "size": 65536}]}


# -- the flags ---------------------------------------------------------------------------------

def test_flags_stop_at_the_source_and_bundle() -> None:
    values = runflags.parse(["-it", "--rm", "-e", "A=1", "-eB=2", "--name=web", "-p", "8080:80", "--cpus", "1.5",
                             "--pids-limit", "10", "busybox", "sh", "-c", "echo -n x", "--rm"])
    assert values["tty"] and values["interactive"] and values["rm"]
    assert values["env"] == ["A=1", "B=2"] and values["name"] == "web" and values["publish"] == ["8080:80"]
    assert values["cpus"] == 1.5 and values["pids_limit"] == 10
    assert values["source"] == "busybox" and values["command"] == ["sh", "-c", "echo -n x", "--rm"]


def test_what_the_fast_parser_leaves_to_typer() -> None:
    for argv in (["--help"], ["--nope", "x"], ["-d"], ["--pids-limit", "many", "x"], ["--name"], ["-Z", "x"],
                 ["--rm=yes", "x"]):
        with pytest.raises(runflags.NotForUs):
            runflags.parse(argv)
    assert runflags.parse(["--", "-weird-source"])["source"] == "-weird-source"


def test_global_options_before_the_verb() -> None:
    assert runflags.split_globals(["--store", "/s", "--debug", "run", "x"], {}) == \
        ({"store": "/s", "debug": True}, ["run", "x"])
    assert runflags.split_globals(["run"], {"RLX_STORE": "/env"}) == ({"store": "/env", "debug": False}, ["run"])
    assert runflags.split_globals(["--help"], {}) is None


# -- the flags as config.json ------------------------------------------------------------------

def test_image_spec_and_podman_defaults() -> None:
    opts = RunOptions(command=["id"], env=["FOO=over", "NEW=1"], cap_drop=["chown"], cap_add=["net_raw"])
    spec = runconfig.image_spec(IMAGE, opts, PASSWD, GROUP, STORE_MAP)
    spec = runconfig.apply(spec, opts, hostname="abcdef012345", volumes=[], network="none")
    process = spec["process"]
    assert process["args"] == ["/bin/sh", "-c", "id"] and process["cwd"] == "/srv"
    assert process["user"] == {"uid": 33, "gid": 33}
    assert "FOO=over" in process["env"] and "NEW=1" in process["env"] and "FOO=bar" not in process["env"]
    caps = process["capabilities"]["bounding"]
    assert "CAP_CHOWN" not in caps and "CAP_NET_RAW" in caps and "CAP_SETUID" in caps
    assert spec["hostname"] == "abcdef012345" and spec["linux"]["uidMappings"] == STORE_MAP["uidMappings"]
    assert spec["annotations"]["rootless.network"] == "none" and "rootless.dns" not in spec["annotations"]


def test_entrypoint_drops_the_images_cmd_and_user_flag() -> None:
    opts = RunOptions(entrypoint="/bin/echo", user="0:33")
    spec = runconfig.image_spec(IMAGE, opts, PASSWD, GROUP, None)
    assert spec["process"]["args"] == ["/bin/echo"] and spec["process"]["user"] == {"uid": 0, "gid": 33}
    with pytest.raises(RootlessError, match="neither Entrypoint nor Cmd"):
        runconfig.image_spec(IMAGE, RunOptions(entrypoint=""), PASSWD, GROUP, None)


def test_resources_read_only_and_network() -> None:
    opts = RunOptions(memory="512m", cpus=1.5, pids_limit=64, read_only=True, tmpfs=["/run:size=1m"],
                      publish=["8080:80"], dns=["1.1.1.1"], tty=True)
    spec = runconfig.image_spec(IMAGE, opts, PASSWD, GROUP, STORE_MAP)
    spec = runconfig.apply(spec, opts, hostname="h", volumes=[], network="pasta")
    assert spec["linux"]["resources"] == {"memory": {"limit": 512 << 20}, "cpu": {"quota": 150000, "period": 100000},
                                          "pids": {"limit": 64}}
    assert spec["root"]["readonly"] is True
    tmpfs = {m["destination"]: m["options"] for m in spec["mounts"] if m["type"] == "tmpfs" and m["source"] == "tmpfs"}
    assert tmpfs["/run"] == ["size=1m"] and "/tmp" in tmpfs and "/var/tmp" in tmpfs
    assert spec["annotations"]["rootless.ports"] == "8080:80" and spec["annotations"]["rootless.dns"] == "1.1.1.1"
    assert spec["process"]["terminal"] is True and "TERM=xterm" in spec["process"]["env"]
    host = runconfig.apply(runconfig.image_spec(IMAGE, RunOptions(), PASSWD, GROUP, STORE_MAP), RunOptions(),
                           hostname="h", volumes=[], network="host")
    assert not any(ns["type"] == "network" for ns in host["linux"]["namespaces"])


def test_refused_flags() -> None:
    spec = runconfig.image_spec(IMAGE, RunOptions(), PASSWD, GROUP, STORE_MAP)
    for opts, words in ((RunOptions(publish=["80:80"]), "-p needs --network"),
                        (RunOptions(memory="lots"), "--memory 'lots'"), (RunOptions(cpus=0), "--cpus"),
                        (RunOptions(cap_add=["FLY"]), "unknown capability"), (RunOptions(workdir="rel"), "-w"),
                        (RunOptions(dns=["1.1.1.1"]), "--dns needs")):
        with pytest.raises(UsageError, match=words):
            runconfig.apply(dict(spec, process=dict(spec["process"])), opts, hostname="h", volumes=[], network="none")
    with pytest.raises(UsageError, match="only keep-id"):
        runconfig.image_spec(IMAGE, RunOptions(userns="auto"), PASSWD, GROUP, STORE_MAP)


def test_env_from_the_host_and_files(tmp_path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=from-file\nB=b\n")
    assert runconfig.parse_env(["A=flag", "HOSTVAR", "UNSET"], [str(env_file)], {"HOSTVAR": "h"}) == \
        ["A=from-file", "B=b", "A=flag", "HOSTVAR=h"]
    with pytest.raises(UsageError, match="--env-file"):
        runconfig.parse_env([], [str(tmp_path / "missing")])


def test_volumes_and_sizes() -> None:
    named = runconfig.parse_volume("data:/srv", "/store/volumes")
    assert named == {"source": "/store/volumes/data/_data", "destination": "/srv", "options": ["rbind", "rw"],
                     "named": True}
    host = runconfig.parse_volume("/home/u/x:/x:ro", "/v")
    assert host["source"] == "/home/u/x" and host["options"] == ["rbind", "ro"] and not host["named"]
    for bad in ("/x", "/x:rel", "/x:/y:bogus", "bad name!:/x"):
        with pytest.raises(UsageError):
            runconfig.parse_volume(bad, "/v")
    assert runconfig.parse_size("1g", "-m") == 1 << 30 and runconfig.parse_size("64MB", "-m") == 64 << 20
    assert runconfig.parse_size("1000", "-m") == 1000


def test_keep_id_puts_the_caller_at_its_own_id() -> None:
    maps = runconfig.keep_id_maps(STORE_MAP, 1000, 1000)
    uid = os.getuid()
    assert maps["uidMappings"][0] == {"containerID": 0, "hostID": 100000, "size": 1000}
    assert {"containerID": 1000, "hostID": uid, "size": 1} in maps["uidMappings"]
    assert maps["uidMappings"][-1] == {"containerID": 1001, "hostID": 101000, "size": 64536}
    assert sum(m["size"] for m in maps["uidMappings"]) == 65537
    alone = runconfig.keep_id_maps(None, 1000, 1000)
    assert alone["uidMappings"] == [{"containerID": 1000, "hostID": uid, "size": 1}]


def test_host_spec() -> None:
    spec = runconfig.host_spec(RunOptions(), "/tmp/work", ["/lib32"], shell="/bin/bash")
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/usr"]["options"] == ["rbind", "ro"] and mounts["/etc"]["options"] == ["rbind", "ro"]
    assert mounts["/lib32"]["source"] == "/lib32" and mounts["/tmp"]["type"] == "tmpfs"
    assert mounts["/tmp/work"]["options"] == ["rbind", "rw"] and "/sys" not in mounts
    order = [m["destination"] for m in spec["mounts"]]
    assert order.index("/tmp") < order.index("/tmp/work"), "the cwd under /tmp is mounted on the private /tmp"
    assert spec["process"]["args"] == ["/bin/bash"] and spec["process"]["cwd"] == "/tmp/work"
    assert spec["linux"]["uidMappings"] == [{"containerID": os.getuid(), "hostID": os.getuid(), "size": 1}]
    applied = runconfig.apply(spec, RunOptions(), hostname="h", volumes=[], network="none")
    assert applied["process"]["capabilities"]["bounding"] == []


# -- records -----------------------------------------------------------------------------------

def test_records_names_and_prefixes(tmp_path) -> None:
    store = str(tmp_path)
    first = records.create(store, name="web", image="busybox", image_id=None, command=["sh"], network="none")
    second = records.create(store, name=None, image="host", image_id=None, command=[], auto_remove=True)
    assert len(first["id"]) == 64 and os.path.isdir(first["bundle"]) and first["created"].endswith("Z")
    assert "_" in second["name"] and second["auto_remove"] is True
    assert records.find(store, "web") == first and records.find(store, second["name"]) == second
    assert records.find(store, first["id"][:12]) == first and records.load(store, first["id"]) == first
    assert [r["id"] for r in records.all(store)] == [first["id"], second["id"]]
    with pytest.raises(records.ContainerError, match="already used by container " + first["id"][:12]):
        records.create(store, name="web", image="x", image_id=None, command=[])
    with pytest.raises(records.ContainerError, match="no container nope"):
        records.find(store, "nope")
    with pytest.raises(records.ContainerError, match="--name"):
        records.create(store, name="bad/name", image="x", image_id=None, command=[])
    # an overlay's work dir is mode 000: still removed
    work = os.path.join(records.container_dir(store, first["id"]), "work", "work")
    os.makedirs(work)
    os.chmod(work, 0)
    records.remove(store, first["id"])
    assert [r["id"] for r in records.all(store)] == [second["id"]]


def test_ambiguous_prefix(tmp_path) -> None:
    store = str(tmp_path)
    made = [records.create(store, name=f"c{i}", image="x", image_id=None, command=[]) for i in range(40)]
    by_first = {}
    for record in made:
        by_first.setdefault(record["id"][0], []).append(record)
    shared = next(group for group in by_first.values() if len(group) > 1)
    with pytest.raises(records.ContainerError, match="ambiguous"):
        records.find(store, shared[0]["id"][0])


def test_store_name_quoting_is_urllibs() -> None:
    for name in ("localhost/bb:1", "docker.io/library/busybox:latest", "a b%c/é@sha256:ab~x"):
        assert quote(name) == url_quote(name, safe="") and unquote(quote(name)) == name


# -- keep-id's chowned copies and the copy fallback ------------------------------------------

def test_keep_id_owners_in_the_store_namespace() -> None:
    """The store's namespace owner that keep-id shows as the image's own ID: with the caller
    at 1000, image root is the first subordinate ID (1 in the store's namespace), 999 the
    1000th, 1000 the caller itself (0), and IDs above stay where they were."""
    from rootless.images import idshift
    keep = runconfig.keep_id_maps(STORE_MAP, 1000, 1000)
    keep["uidMappings"] = [dict(m, hostID=1000) if m["size"] == 1 else m for m in keep["uidMappings"]]
    segs = idshift.segments(STORE_MAP["uidMappings"], keep["uidMappings"])
    assert [idshift.shift(segs, c) for c in (0, 33, 999, 1000, 1001, 1234, 65536)] == [1, 34, 1000, 0, 1001, 1234,
                                                                                          65536]
    assert idshift.shift(segs, 70000) == 70000, "an ID keep-id leaves out stays as it was"
    assert idshift.map_key(keep) == idshift.map_key({k: list(reversed(v)) for k, v in keep.items()})
    assert idshift.map_key(keep) != idshift.map_key(runconfig.keep_id_maps(STORE_MAP, 1001, 1000))


def test_a_file_capability_moves_with_root() -> None:
    from rootless.images import idshift
    segs = [(0, 1, 1000), (1000, 0, 1)]
    v2 = bytes.fromhex("01000002" "00040000" "00000000" "00000000" "00000000")
    v3 = idshift.shift_capability(v2, segs)
    assert v3 == bytes.fromhex("01000003" "00040000" "00000000" "00000000" "00000000" "01000000")
    assert idshift.shift_capability(v3, segs)[20:] == (2).to_bytes(4, "little"), "a v3 root ID moves too"
    assert idshift.shift_capability(b"\x00\x00\x00\x01" + bytes(8), segs) == b"\x00\x00\x00\x01" + bytes(8)


def test_a_refused_overlay_is_started_again_over_a_copy(monkeypatch, tmp_path) -> None:
    """run's decision: the runtime's overlay refusal (and only it) retries once over a copy."""
    import json

    from rootless.rlx import prepare, run
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"annotations": {"rootless.overlay": "lowerdir=/l"}}))
    record = {"bundle": str(bundle), "layers": ["/l"]}
    copies, attempts = [], []
    monkeypatch.setattr(prepare, "copy_root", lambda store, rec: copies.append(rec["layers"]))

    def start():
        attempts.append(json.loads((bundle / "config.json").read_text()))
        if len(attempts) == 1:
            raise RootlessError("annotation rootless.overlay: mount overlay on /x: Invalid argument (Linux 5.11+ ...)")
        return 7
    assert run._with_fallback(None, record, start) == 7
    assert copies == [["/l"]] and attempts[1] == {"annotations": {}}

    def other():
        raise RootlessError("mount proc on /proc: Permission denied")
    with pytest.raises(RootlessError, match="proc"):
        run._with_fallback(None, record, other)
    assert len(copies) == 1, "only the overlay's refusal falls back"


def test_a_layer_copy_is_whole_or_absent(tmp_path) -> None:
    """Built in tmp/, renamed when complete: a failure leaves neither the copy nor its temporary."""
    from rootless.images import idshift
    layer = tmp_path / "layer"
    (layer / "d").mkdir(parents=True)
    (layer / "d/f").write_text("x")
    os.link(layer / "d/f", layer / "d/hard")
    os.symlink("f", layer / "d/link")
    os.chmod(layer / "d/f", 0o4750)
    ok = [(str(layer), str(tmp_path / "tmp-ok"), str(tmp_path / "copy"))]
    idshift._copy_all(ok, [], [])
    copy = tmp_path / "copy"
    assert (copy / "d/f").stat().st_ino == (copy / "d/hard").stat().st_ino and os.readlink(copy / "d/link") == "f"
    assert (copy / "d/f").stat().st_mode & 0o7777 == 0o4750 and not (tmp_path / "tmp-ok").exists()
    broken = [(str(layer), str(tmp_path / "tmp-1"), str(tmp_path / "whole")),
              (str(tmp_path / "gone"), str(tmp_path / "tmp-2"), str(tmp_path / "never"))]
    with pytest.raises(FileNotFoundError):
        idshift._copy_all(broken, [], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "layer", "whole"]
