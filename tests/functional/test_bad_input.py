"""Bad input: one clear line on stderr, exit status 1, and nothing left behind (no process,
state directory, mount or helper)."""

import json
import os
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.runtime import Runtime


def assert_one_line_error(result, *needles: str, status: int = 1) -> None:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def create_fails(runtime: Runtime, bundle: Path, *needles: str) -> None:
    container_id = runtime.new_id("bad")
    result = runtime.run("create", "--bundle", bundle, container_id)
    assert_one_line_error(result, *needles)
    runtime.assert_no_leaks(container_id, bundle=bundle)
    assert runtime.run("list", "-q", check=True).stdout == ""


def write_config(runtime: Runtime, text: str) -> Path:
    bundle = runtime.bundle(["true"])
    (bundle / "config.json").write_text(text)
    return bundle


def test_missing_bundle(runtime: Runtime) -> None:
    create_fails(runtime, runtime.work_dir / "nowhere", "nowhere", "no such directory")


def test_missing_config(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"])
    (bundle / "config.json").unlink()
    create_fails(runtime, bundle, "config.json", "no such file or directory")


def test_malformed_json(runtime: Runtime) -> None:
    create_fails(runtime, write_config(runtime, '{"ociVersion": "1.0.2", '), "invalid JSON")


def test_schema_violation(runtime: Runtime) -> None:
    config = make_config(["true"], rootless=runtime.rootless, process={"user": {"uid": "zero"}},
                         root={"path": str(runtime.rootfs)})
    create_fails(runtime, write_config(runtime, json.dumps(config)), "process.user.uid")


def test_missing_rootfs(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"])
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = "/nonexistent/rootfs"
    (bundle / "config.json").write_text(json.dumps(config))
    create_fails(runtime, bundle, "/nonexistent/rootfs", "no such directory")


def test_missing_executable(runtime: Runtime) -> None:
    create_fails(runtime, runtime.bundle(["/bin/no-such-program"]), "no-such-program", "no such file or directory")
    create_fails(runtime, runtime.bundle(["no-such-program"]), "executable file not found in $PATH")


def test_missing_bind_source(runtime: Runtime) -> None:
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/data", "type": "bind", "source": "/nonexistent/source", "options": ["rbind"]}]
    create_fails(runtime, runtime.bundle(["true"], mounts=mounts), "/nonexistent/source")


def test_unsupported_field_is_refused_by_name(runtime: Runtime) -> None:
    create_fails(runtime, runtime.bundle(["true"], linux={"intelRdt": {"closID": "c1"}}), "linux.intelRdt")


@pytest.mark.parametrize("bad_id", ["a/b", "..", "a b", "x" * 1100])
def test_invalid_id(runtime: Runtime, bad_id: str) -> None:
    result = runtime.run("create", "--bundle", runtime.bundle(["true"]), bad_id)
    assert_one_line_error(result, "invalid container id")
    assert list(runtime.state_root.iterdir()) == []


def test_duplicate_id(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    result = runtime.run("create", "--bundle", bundle, container_id)
    assert_one_line_error(result, container_id, "already exists")
    assert runtime.state(container_id)["status"] == "created"  # the first one is untouched
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


@pytest.mark.parametrize("argv, needle", [
    (["create", "--bogus", "x"], "unknown flag --bogus"),
    (["--bogus", "list"], "unknown flag --bogus"),
    (["frobnicate"], "No help topic for 'frobnicate'"),
    (["kill", "x", "SIGFOO"], "invalid signal"),
    (["create", "--preserve-fds", "many", "x"], "--preserve-fds"),
    (["state"], "missing ID"),
])
def test_usage_errors(runtime: Runtime, argv: list[str], needle: str) -> None:
    # An unknown verb exits 3, as runc's does (urfave/cli's "No help topic").
    assert_one_line_error(runtime.run(*argv), needle, status=3 if argv == ["frobnicate"] else 1)


def test_json_log_gets_exactly_one_line(runtime: Runtime) -> None:
    log = runtime.work_dir / "oci-log"
    bundle = runtime.bundle(["no-such-program"])
    container_id = runtime.new_id("bad")
    result = runtime.run("--log-format=json", "--log", log, "create", "--bundle", bundle, container_id)
    assert_one_line_error(result, "executable file not found")
    entries = log.read_text().splitlines()
    assert len(entries) == 1
    entry = json.loads(entries[0])
    assert entry["level"] == "error" and "executable file not found in $PATH" in entry["msg"] and entry["time"]
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_mapping_outside_the_subordinate_range(rootless_runtime: Runtime) -> None:
    runtime = rootless_runtime
    maps = {"uidMappings": [{"containerID": 0, "hostID": runtime.user.uid, "size": 1},
                            {"containerID": 1, "hostID": 10, "size": 100}],
            "gidMappings": [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]}
    create_fails(runtime, runtime.bundle(["true"], linux=maps), "uidMappings", "usermod --add-subuids")


def test_process_user_not_mapped(rootless_runtime: Runtime) -> None:
    runtime = rootless_runtime
    maps = {"uidMappings": [{"containerID": 0, "hostID": runtime.user.uid, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]}
    create_fails(runtime, runtime.bundle(["true"], linux=maps, process={"user": {"uid": 5000, "gid": 0}}),
                 "5000")


def test_nothing_left_after_a_failing_create_is_killed(runtime: Runtime) -> None:
    """kill -9 of the CLI while the init waits for its answer: the init notices and exits."""
    import signal
    import time
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    proc = runtime.popen("--debug", "create", "--bundle", bundle, container_id)
    time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)
    # The id may or may not have been recorded: either way delete -f clears it all.
    runtime.run("delete", "-f", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_hostname_without_a_uts_namespace(runtime: Runtime) -> None:
    namespaces = [{"type": t} for t in ("pid", "ipc", "mount")] + (
        [{"type": "user"}] if runtime.rootless else [])
    create_fails(runtime, runtime.bundle(["true"], linux={"namespaces": namespaces}), "hostname", "uts namespace")
