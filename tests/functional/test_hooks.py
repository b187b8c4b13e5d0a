"""OCI hooks in real containers: each kind at its moment and in its namespaces, the state on
stdin, exact args and env, timeouts, and failures that fail the operation (or only warn)."""

import json
import os
import time
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.leaks import processes_mentioning
from helpers.runtime import Runtime
from helpers.users import chown_tree

import test_bad_input as bad_input  # its one-line-error and nothing-left checks

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
RUNTIME_KINDS = ("prestart", "createRuntime", "poststart", "poststop")
ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]

# $1: the folder of the log (as the hook sees it), $2: the hook's name. Appends
# "name status pid mnt-ns pid-ns" to $1/hooks.log and keeps the state it read in $1/NAME.json.
LOGGING_HOOK = r"""#!/bin/sh
state=$(cat)
printf '%s\n' "$state" > "$1/$2.json"
pid=$(printf '%s' "$state" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
status=$(printf '%s' "$state" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
echo "$2 $status $pid $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/pid)" >> "$1/hooks.log"
"""


def write_script(runtime: Runtime, name: str, text: str) -> Path:
    path = runtime.work_dir / name
    path.write_text(text)
    os.chmod(path, 0o755)
    chown_tree(path, runtime.user)
    return path


def shell_hook(script: str, **extra) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "env": ENV, **extra}


def create_fails(runtime: Runtime, hooks: dict, *needles: str) -> None:
    """create fails with one line naming the needles, and leaves nothing (test_bad_input's check)."""
    bad_input.create_fails(runtime, runtime.bundle(["true"], hooks=hooks), *needles)


def test_every_hook_at_its_moment_in_its_namespaces(runtime: Runtime) -> None:
    work = runtime.work_dir
    script = write_script(runtime, "hook.sh", LOGGING_HOOK)
    hooks = {kind: [{"path": str(script), "args": ["hook.sh", str(work), kind], "env": ENV}] for kind in KINDS}
    # startContainer resolves its path inside the container: the work folder is mounted at /hooks.
    hooks["startContainer"] = [{"path": "/hooks/hook.sh", "args": ["hook.sh", "/hooks", "startContainer"], "env": ENV}]
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/hooks", "type": "bind", "source": str(work), "options": ["rbind"]}]
    bundle = runtime.bundle(["sleep", "600"], hooks=hooks, mounts=mounts, annotations={"org.example.key": "value"})
    container_id = runtime.new_id()
    log = work / "hooks.log"

    runtime.run("create", "--bundle", bundle, container_id, check=True)
    init_pid = runtime.state(container_id)["pid"]
    container_ns = (os.readlink(f"/proc/{init_pid}/ns/mnt"), os.readlink(f"/proc/{init_pid}/ns/pid"))
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["prestart", "createRuntime",
                                                                          "createContainer"]
    runtime.run("start", container_id, check=True)
    runtime.run("kill", container_id, "KILL", check=True)
    runtime.wait_for_status(container_id, "stopped")
    runtime.run("delete", container_id, check=True)

    entries = [line.split() for line in log.read_text().splitlines()]
    assert [entry[0] for entry in entries] == list(KINDS)
    statuses = {entry[0]: entry[1] for entry in entries}
    assert statuses == {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
                        "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    assert all(int(entry[2]) == init_pid for entry in entries), entries
    host_pid_ns = os.readlink("/proc/self/ns/pid")
    for name, _, _, mnt_ns, pid_ns in entries:
        if name in RUNTIME_KINDS:
            assert pid_ns == host_pid_ns, (name, pid_ns)
            # Once the container is gone its namespace inodes may be reused: poststop has no mnt check.
            assert name == "poststop" or mnt_ns != container_ns[0], (name, mnt_ns)
        else:
            assert (mnt_ns, pid_ns) == container_ns, (name, mnt_ns, pid_ns)
    state = json.loads((work / "createRuntime.json").read_text())
    assert state == {"ociVersion": "1.0.2", "id": container_id, "status": "creating", "pid": init_pid,
                     "bundle": str(bundle), "annotations": {"org.example.key": "value"}}
    assert json.loads((work / "startContainer.json").read_text())["status"] == "created"
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(init_pid,))


def test_args_and_env_are_passed_exactly(runtime: Runtime) -> None:
    work = runtime.work_dir
    dump = 'tr "\\000" "\\n" < /proc/$$/cmdline > "$1/args"; tr "\\000" "\\n" < /proc/$$/environ > "$1/env"'
    args = ["custom-argv0", "-c", dump, "sh", str(work), "two words"]
    env = ["PATH=/usr/bin:/bin", "ONE=1", "SPACED=a b", "EMPTY="]
    bundle = runtime.bundle(["true"], hooks={"createRuntime": [{"path": "/bin/sh", "args": args, "env": env}]})
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    runtime.run("delete", container_id, check=True)
    assert (work / "args").read_text().splitlines() == args
    assert sorted((work / "env").read_text().splitlines()) == sorted(env)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_timeout_kills_a_slow_hook_and_fails_create(runtime: Runtime) -> None:
    started = time.monotonic()
    create_fails(runtime, {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "987"], "timeout": 1}]},
                 "createRuntime hook #0", "timed out after 1 s")
    assert time.monotonic() - started < 30
    assert not [p for p in processes_mentioning("sleep 987") if "sleep 987" == p[1]]


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_a_failing_create_hook_fails_create_cleanly(runtime: Runtime, kind: str) -> None:
    create_fails(runtime, {kind: [shell_hook("echo boom-from-hook >&2; exit 3")]},
                 f"{kind} hook #0 (/bin/sh) failed", "exit status 3", "boom-from-hook")


def test_a_later_hook_does_not_run_after_a_failure(runtime: Runtime) -> None:
    marker = runtime.work_dir / "ran"
    create_fails(runtime, {"createRuntime": [shell_hook("exit 1"), shell_hook(f"touch {marker}")]},
                 "createRuntime hook #0", "exit status 1")
    assert not marker.exists()


def test_a_missing_hook_path_is_one_clear_error(runtime: Runtime) -> None:
    create_fails(runtime, {"createRuntime": [{"path": "/nonexistent/hook"}]},
                 "createRuntime hook #0 (/nonexistent/hook)", "exec /nonexistent/hook: No such file or directory")
    create_fails(runtime, {"createContainer": [{"path": "/nonexistent/hook"}]},
                 "createContainer hook #0", "No such file or directory")
    create_fails(runtime, {"poststop": [{"path": "relative/hook"}]}, "hooks.poststop[0].path", "absolute")


def test_a_failing_start_container_hook_fails_start(runtime: Runtime) -> None:
    # Resolved inside the container: busybox's sh.
    bundle = runtime.bundle(["sleep", "600"], hooks={"startContainer": [shell_hook("echo nope >&2; exit 4")]})
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    result = runtime.run("start", container_id)
    bad_input.assert_one_line_error(result, "startContainer hook #0", "exit status 4", "nope")
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


def test_failing_poststart_stops_the_container_and_poststop_only_warns(runtime: Runtime) -> None:
    """runtime.md, lifecycle: a failing poststart hook is an error and stops the container; a
    failing poststop hook is a warning, and the remaining poststop hooks still run."""
    marker = runtime.work_dir / "second"
    hooks = {"poststart": [shell_hook("echo bad-start >&2; exit 2")],
             "poststop": [shell_hook("exit 5"), shell_hook(f"touch {marker}")]}
    bundle = runtime.bundle(["sleep", "600"], hooks=hooks)
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    result = runtime.run("start", container_id)
    bad_input.assert_one_line_error(result, "poststart hook #0", "bad-start", "stopped")
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    deleted = runtime.run("delete", container_id)
    assert deleted.returncode == 0, deleted.stderr
    warnings = deleted.stderr.splitlines()
    assert len(warnings) == 1 and "warning" in warnings[0] and "poststop hook #0" in warnings[0], deleted.stderr
    assert "exit status 5" in warnings[0]
    assert marker.exists()  # the remaining hooks still ran
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


def test_features_lists_the_hooks(runtime: Runtime) -> None:
    features = json.loads(runtime.run("features", check=True).stdout)
    assert features["hooks"] == list(KINDS)
