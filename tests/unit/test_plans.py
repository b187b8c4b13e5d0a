"""Pure plans: namespaces, mounts, signals, ids."""

import pytest

from rootless import container, state
from rootless.oci import mounts, namespaces
from rootless.linux import procfs, syscalls as sc
from rootless.errors import ConfigError, RootlessError


def ns(*types, **paths):
    return {"namespaces": [{"type": t} for t in types] + [{"type": t, "path": p} for t, p in paths.items()]}


def test_unprivileged_caller_gets_a_user_namespace_first():
    plan = namespaces.plan_namespaces(ns("pid", "mount"), privileged=False, in_initial_userns=True)
    assert plan.new_user and plan.auto_user
    assert plan.new_types == ["pid", "mount"]
    assert plan.unshare_flags == sc.CLONE_NEWPID | sc.CLONE_NEWNS


def test_podman_root_in_a_user_namespace_without_maps_creates_none():
    plan = namespaces.plan_namespaces(ns("user", "mount", network="/run/netns/x"), privileged=True,
                                      in_initial_userns=False)
    assert not plan.new_user
    assert plan.join == [("network", "/run/netns/x")]


def test_host_root_user_namespace_needs_maps():
    with pytest.raises(ConfigError, match="uidMappings"):
        namespaces.plan_namespaces(ns("user", "mount"), privileged=True, in_initial_userns=True)
    linux = ns("user", "mount") | {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
    assert namespaces.plan_namespaces(linux, privileged=True, in_initial_userns=True).new_user


def test_user_namespace_path_is_joined_first():
    plan = namespaces.plan_namespaces(ns("mount", network="/n", user="/u"), privileged=False, in_initial_userns=True)
    assert plan.join[0] == ("user", "/u") and not plan.new_user


def test_mount_options():
    flags, propagation, data, recursive = mounts.parse_options(
        ["nosuid", "ro", "rw", "noexec", "rslave", "mode=755", "size=1k", "rro"], "/x")
    assert flags == sc.MS_NOSUID | sc.MS_NOEXEC
    assert propagation == [sc.MS_SLAVE | sc.MS_REC]
    assert data == ["mode=755", "size=1k"]
    assert recursive == (sc.MOUNT_ATTR_RDONLY, 0)


def test_bind_source_is_relative_to_the_bundle():
    op = mounts.plan_mount({"destination": "/data", "type": "bind", "source": "src", "options": ["rbind", "ro"]}, "/b")
    assert op.bind and op.source == "/b/src"
    assert op.flags & sc.MS_REC and op.remount_flags == sc.MS_RDONLY


def test_unsupported_option_is_refused_with_its_name():
    with pytest.raises(ConfigError, match="tmpcopyup"):
        mounts.parse_options(["tmpcopyup"], "/x")


def test_fresh_dev_gets_default_devices_and_links():
    plan = mounts.plan_rootfs({"mounts": [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}],
                               "linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}, "/b")
    paths = [getattr(op, "path", None) for op in plan]
    assert "/dev/null" in paths and "/dev/fuse" in paths and "/dev/ptmx" in paths


def test_a_device_that_overrides_a_default_goes_with_the_configs_devices():
    """runc's createDevices: the defaults the config does not list, then the config's devices."""
    devices = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
               {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600}]
    plan = mounts.plan_devices({"devices": devices}, with_defaults=True)
    assert [op.path for op in plan] == ["/dev/null", "/dev/random", "/dev/full", "/dev/tty", "/dev/urandom",
                                        "/dev/fuse", "/dev/zero"]
    assert plan[-1].mode == 0o600


def test_without_a_dev_mount_the_images_dev_gets_the_nodes():
    """runc's needsSetupDev: without a /dev bind, its nodes and links go into the /dev there is."""
    plan = mounts.plan_rootfs({"mounts": [], "linux": {}}, "/b")
    assert [getattr(op, "path", None) for op in plan][:2] == ["/dev/null", "/dev/random"]  # runc's order
    assert "/dev/ptmx" in [getattr(op, "path", None) for op in plan]


def test_a_bound_dev_gets_no_nodes():
    """runc's needsSetupDev: a /dev bind is used as it is, config devices included."""
    plan = mounts.plan_rootfs({"mounts": [{"destination": "/dev", "type": "bind", "source": "/d", "options": ["rbind"]}],
                               "linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}, "/b")
    assert [op.kind for op in plan] == ["mount"]


def test_tmpfs_and_dev_are_made_read_only_after_they_are_filled():
    plan = mounts.plan_rootfs({"mounts": [
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
        {"destination": "/b", "type": "bind", "source": "/x", "options": ["bind", "ro"]},
        {"destination": "/p", "type": "proc", "source": "proc", "options": ["ro"]}], "linux": {}}, "/b")
    assert [op.writable_first for op in plan if op.kind == "mount"] == [True, True, False, False]


MAPS = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _idmapped(linux: dict, *, in_initial_userns: bool, **entry):
    plan = [mounts.plan_mount({"destination": "/v", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"],
                               **entry}, "/bundle")]
    mounts.resolve_idmaps(plan, linux, in_initial_userns=in_initial_userns)
    return plan[0]


def test_idmap_without_mappings_takes_the_containers_own():
    # A new user namespace: the init opens its own; real root's CLI process uses the config's maps.
    op = _idmapped({"namespaces": [{"type": "user"}], "uidMappings": MAPS, "gidMappings": MAPS},
                   in_initial_userns=True)
    assert op.idmap_userns == mounts.OWN_USERNS and op.idmap == (MAPS, MAPS, False)
    # One joined by path.
    op = _idmapped({"namespaces": [{"type": "user", "path": "/proc/7/ns/user"}]}, in_initial_userns=True)
    assert op.idmap_userns == "/proc/7/ns/user"
    # None in the config, the runtime in podman's: that one.
    op = _idmapped({"namespaces": [{"type": "mount"}]}, in_initial_userns=False)
    assert op.idmap_userns == mounts.OWN_USERNS and op.idmap == (None, None, False)
    # Mappings on the mount win.
    op = _idmapped({"namespaces": [{"type": "user"}]}, in_initial_userns=True, uidMappings=MAPS, gidMappings=MAPS)
    assert op.idmap_userns is None and op.idmap == (MAPS, MAPS, False)


def test_idmap_without_any_user_namespace_is_refused():
    with pytest.raises(ConfigError, match="needs a user namespace with ID maps"):
        _idmapped({"namespaces": [{"type": "mount"}]}, in_initial_userns=True)
    with pytest.raises(ConfigError, match="needs both uidMappings and gidMappings"):
        _idmapped({"namespaces": [{"type": "user"}]}, in_initial_userns=True, uidMappings=MAPS)


def test_mount_point_of(tmp_path):
    from rootless.rootfs import apply
    info = tmp_path / "mountinfo"
    info.write_text("22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n"
                    "30 22 8:2 / /var/lib rw - ext4 /dev/sda2 rw\n"
                    "31 22 0:5 / /var/lib\\040x rw shared:7 master:2 - tmpfs t rw\n")
    assert apply._mount_point_of("/var/lib/containers/x/rootfs", str(info)) == ("/var/lib", False)
    assert apply._mount_point_of("/var/lib x/r", str(info)) == ("/var/lib x", True)
    assert apply._mount_point_of("/srv/r", str(info)) == ("/", True)


def test_write_once_refuses_a_file_not_on_procfs(tmp_path):
    fake = tmp_path / "oom_score_adj"
    fake.write_text("")
    with pytest.raises(OSError, match="not on procfs"):
        procfs.write_once(str(fake), "100")
    assert fake.read_text() == ""
    current = open("/proc/self/oom_score_adj").read().strip()
    procfs.write_once("/proc/self/oom_score_adj", current)  # the real one is taken


@pytest.mark.parametrize("text, number", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("term", 15),
                                          ("SIGRTMIN", 34), ("0", 0)])
def test_signal_spellings(text, number):
    assert container.signal_number(text) == number


@pytest.mark.parametrize("text", ["FOO", "999", "SIG_DFL", ""])
def test_bad_signals(text):
    with pytest.raises(RootlessError):
        container.signal_number(text)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x" * 1025, "é", "a\n"])
def test_bad_ids(bad):
    with pytest.raises(RootlessError, match="invalid container id"):
        state.validate_id(bad)


def test_good_ids():
    for good in ("a", "A-b_c.d+e", "0" * 64):
        state.validate_id(good)


def test_jsonlite_matches_json_in_a_fresh_interpreter():
    """_json's scanner reports errors through json.decoder only if that is loaded: check the
    error path where nothing imported json first."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from rootless import jsonlite\n"
            "assert 'json' not in sys.modules\n"
            "assert jsonlite.loads(' {\"a\": [1, 2.5, true, null, \"\\\\u00e9\"]} ') == {'a': [1, 2.5, True, None, 'é']}\n"
            "for bad in ('{', '[1,]', '{\"a\": 1} x', '', 'nul'):\n"
            "    try:\n"
            "        jsonlite.loads(bad)\n"
            "    except ValueError as err:\n"
            "        assert 'line 1' in str(err), err\n"
            "    else:\n"
            "        raise AssertionError(bad)\n"
            "print(jsonlite.dumps({'k': ['v', 1, {'x': None}]}, indent=2))\n") % str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json
    assert json.loads(out.stdout) == {"k": ["v", 1, {"x": None}]}


def test_a_reused_pid_is_not_the_container(tmp_path):
    """The init is identified by PID and start time: the same PID with another start time
    (a new process after a reboot or PID wrap) is not the container."""
    import os
    from rootless.linux import procfs
    cdir = state.ContainerDir(str(tmp_path), "c1")
    cdir.make()
    me = {"pid": os.getpid(), "pid_start": procfs.start_time(os.getpid())}
    assert state.status(cdir, me) == "running"
    cdir.make_fifo()
    assert state.status(cdir, me) == "created"
    assert state.status(cdir, dict(me, pid_start=me["pid_start"] + 1)) == "stopped"
    assert state.status(cdir, dict(me, pid=0)) == "stopped"
