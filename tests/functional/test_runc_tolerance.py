"""Validation is never stricter than runc and crun: each config here is one that runc 1.1.5 runs
(as the test user and as root) and the published schema or one of our checks once refused. The
container runs under rootless and, where runc can run it here, under runc, and both must print
the same. docs/differences-from-runc.md ("Validation") lists the rules."""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.bundle import make_bundle, make_config
from helpers.runtime import RUNC, Runtime
from helpers.users import chown_tree

HAVE_RUNC = os.access(RUNC, os.X_OK)


def bundle_for(runtime: Runtime, binary: str, script: str, change: Callable[[dict], None]) -> Path:
    """A bundle running `sh -c script`, config.json edited by `change` after make_config (so that
    it can hold nulls). runc as the test user needs its caller mapped, as `runc spec --rootless`
    writes it; rootless maps the caller itself."""
    config = make_config(["sh", "-c", script], rootless=runtime.rootless)
    if binary == RUNC and runtime.rootless:
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": runtime.user.uid, "size": 1}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]
    change(config)
    folder = Path(tempfile.mkdtemp(prefix="bundle-", dir=runtime.work_dir))
    os.chmod(folder, 0o755)
    chown_tree(folder, runtime.user)
    return make_bundle(folder, config, runtime.rootfs)


def run_with(runtime: Runtime, binary: str, script: str, change: Callable[[dict], None], *flags: str):
    ours = runtime.binary
    runtime.binary = binary
    try:
        bundle = bundle_for(runtime, binary, script, change)
        container_id = runtime.new_id("tol")
        result = runtime.run(*flags, "run", "--bundle", bundle, container_id)
        if binary == ours:
            runtime.assert_no_leaks(container_id, bundle=bundle)
        return result
    finally:
        runtime.binary = ours


def runs_as_runc_does(runtime: Runtime, script: str, change: Callable[[dict], None], *,
                      runc: bool = True) -> str:
    """Run the config under rootless (it must succeed) and, with `runc`, under runc: the same
    exit status and output. Returns rootless's output."""
    ours = run_with(runtime, runtime.binary, script, change)
    assert ours.returncode == 0, ours.stderr
    if runc and HAVE_RUNC:
        theirs = run_with(runtime, RUNC, script, change)
        assert theirs.returncode == 0, f"runc no longer runs this config: {theirs.stderr}"
        assert ours.stdout == theirs.stdout
    return ours.stdout


def setter(path: str, value) -> Callable[[dict], None]:
    """A change that sets config[a][b]... (dotted path) to value, None included."""
    def change(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[last] = value
    return change


# The root mount's propagation as the container sees it: shared, master (slave), both or none.
ROOT_PROPAGATION = "awk '$5 == \"/\" { t = \"\"; for (i = 7; $i != \"-\"; i++) { sub(/:.*/, \"\", $i); t = t $i \" \" } print \"root:\" t }' /proc/self/mountinfo"


@pytest.mark.parametrize("propagation", ["rprivate", "rslave", "rshared", "private", ""])
def test_rootfs_propagation_recursive_forms(runtime: Runtime, propagation: str) -> None:
    """rshared runs, but its root mount is not compared: runc's shows no peer group (the
    mount code's concern, not validation's)."""
    def change(config: dict) -> None:
        config["linux"]["rootfsPropagation"] = propagation
        # runc's cgroup v1 mount fails under a shared root on this hybrid host: not our concern here
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    out = runs_as_runc_does(runtime, ROOT_PROPAGATION, change, runc=propagation != "rshared")
    assert out.startswith("root:")


def test_propagation_options_on_mounts(runtime: Runtime) -> None:
    def change(config: dict) -> None:
        for i, option in enumerate(("rprivate", "rslave", "rshared", "runbindable")):
            config["mounts"].append({"destination": f"/mnt/{i}", "type": "tmpfs", "source": "tmpfs",
                                     "options": [option]})
    out = runs_as_runc_does(runtime, "grep -c ' /mnt/[0-3] ' /proc/self/mountinfo", change)
    assert out == "4\n"


def test_time_offsets_null_and_other_nulls(runtime: Runtime) -> None:
    """Go reads null as the zero value: every one of these is as if absent."""
    def change(config: dict) -> None:
        config["linux"].update(timeOffsets=None, sysctl=None, maskedPaths=None, resources=None, devices=None)
        config["annotations"] = None
        config["root"]["readonly"] = None
        config["mounts"][1]["options"] = None
        config["linux"]["namespaces"][0]["path"] = None
        config["process"].update(rlimits=None, oomScoreAdj=None, noNewPrivileges=None, terminal=None,
                                 consoleSize=None, apparmorProfile=None)
        config["process"]["user"].update(additionalGids=None, umask=None)
    out = runs_as_runc_does(runtime, "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; umask; "
                                     "test -w /etc && echo rw; test -e /proc/kcore && echo kcore; true", change)
    assert "NoNewPrivs:\t0" in out and "rw" in out.split()


def test_capabilities_null_runs(runtime: Runtime) -> None:
    """Not compared: without process.capabilities runc's process has none, rootless's keeps the
    init's (the process stage's concern, not validation's)."""
    out = runs_as_runc_does(runtime, "echo ran", setter("process.capabilities", None), runc=False)
    assert out == "ran\n"


def test_redundant_dev_ptmx_device(runtime: Runtime) -> None:
    """podman lists /dev/ptmx among the devices; runc makes it the link to pts/ptmx anyway."""
    ptmx = {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2, "fileMode": 0o666, "uid": 0, "gid": 0}
    out = runs_as_runc_does(runtime, "readlink /dev/ptmx; test -c /dev/pts/ptmx && echo char",
                            setter("linux.devices", [ptmx]))
    assert out == "pts/ptmx\nchar\n"


def test_device_file_mode_with_file_type_bits(runtime: Runtime) -> None:
    """podman as root sends 8630 (S_IFCHR|0666). Rootless binds the host's node of the same path
    (runc too), so as the test user the device is /dev/null itself; root makes a new node."""
    path = "/dev/null" if runtime.rootless else "/dev/xnull"
    node = {"path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 8630, "uid": 0, "gid": 0}
    out = runs_as_runc_does(runtime, f"test -c {path} && echo char", setter("linux.devices", [node]))
    assert out == "char\n"


def test_seccomp_rules_runc_tolerates(runtime: Runtime) -> None:
    """An unknown syscall name is skipped, a rule without names matches nothing, errnoRet beside
    an action without an errno is ignored, and so are listenerPath without SCMP_ACT_NOTIFY and
    listenerMetadata: runc and crun run this filter."""
    seccomp = {
        "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
        "listenerPath": "/nonexistent/agent.sock", "listenerMetadata": "unused",
        "syscalls": [
            {"names": ["no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": [], "action": "SCMP_ACT_KILL"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5},
        ],
    }
    out = runs_as_runc_does(runtime, "mkdir /dev/shm/x 2>/dev/null || echo refused; echo $$",
                            setter("linux.seccomp", seccomp))
    assert out.splitlines()[0] == "refused"


def test_relative_mount_destination_is_under_root(runtime: Runtime) -> None:
    def change(config: dict) -> None:
        config["mounts"].append({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"})
    out = runs_as_runc_does(runtime, "grep -c ' /mnt ' /proc/self/mountinfo", change)
    assert out == "1\n"


def test_relative_mount_destination_warns_in_the_log(runtime: Runtime) -> None:
    log = runtime.work_dir / "runtime.log"
    result = run_with(runtime, runtime.binary, "true",
                      lambda c: c["mounts"].append({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}),
                      "--log", str(log), "--log-format", "json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["level"], line["msg"]) for line in lines] == [
        ("warning", "mount destination mnt is not absolute. Support for non-absolute mount destinations "
                    "will be removed in a future release.")]


def test_personality_flags_are_ignored(runtime: Runtime) -> None:
    out = runs_as_runc_does(runtime, "echo ran", setter("linux.personality", {"domain": "LINUX", "flags": ["x"]}))
    assert out == "ran\n"


def test_hook_env_entry_without_equals(runtime: Runtime) -> None:
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "true"], "env": ["FOO", "BAR=1"]}
    out = runs_as_runc_does(runtime, "echo ran", setter("hooks", {"prestart": [hook]}))
    assert out == "ran\n"
