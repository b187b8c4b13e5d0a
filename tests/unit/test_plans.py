"""Pure plans: namespaces, mounts, signals, ids."""

import pytest

from rootless import container, mounts, namespaces, state
from rootless import syscalls as sc
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


def test_no_dev_mount_keeps_only_config_devices():
    plan = mounts.plan_rootfs({"mounts": [], "linux": {}}, "/b")
    assert plan == []


@pytest.mark.parametrize("text, number", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("term", 15),
                                          ("SIGRTMIN", 34)])
def test_signal_spellings(text, number):
    assert container.signal_number(text) == number


@pytest.mark.parametrize("text", ["FOO", "0", "999", "SIG_DFL", ""])
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
