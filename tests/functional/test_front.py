"""The compiled front (rootless/front/front.c), the installed `rootless` command: the calls it
answers itself print what Python prints, byte for byte, and do what Python does; every other
call, each error included, is handed to Python unchanged (tests/functional/test_fastpath.py
compares the installed command with the CLI alone on the same verbs' successes and errors).

"Answered by the front" is shown with a copy of the front whose Python launcher beside it is
a script that exits 99: a call the front hands over fails with 99."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from helpers.runtime import Runtime
from helpers.users import chown_tree

HANDED_OVER = 99
PYTHON_ONLY = {"ROOTLESS_NO_FRONT": "1"}


@pytest.fixture
def front_only(runtime: Runtime) -> Runtime:
    folder = runtime.work_dir / "front-only"
    folder.mkdir()
    shutil.copy(runtime.binary, folder / "rootless")
    launcher = folder / "rootless-python"
    launcher.write_text(f"#!/bin/sh\necho 'handed over' >&2\nexit {HANDED_OVER}\n")
    launcher.chmod(0o755)
    chown_tree(folder, runtime.user)
    return Runtime(runtime.mode, runtime.user, str(folder / "rootless"), runtime.state_root, runtime.work_dir,
                   runtime.rootfs)


def answered(front: Runtime, *args: str) -> str:
    result = front.run(*args)
    assert (result.returncode, result.stderr) == (0, ""), (args, result.returncode, result.stderr)
    return result.stdout


def handed_over(front: Runtime, *args: str, env: dict | None = None) -> None:
    result = front.run(*args, env=env)
    assert (result.returncode, result.stderr) == (HANDED_OVER, "handed over\n"), (args, result)


def python_state(runtime: Runtime, container_id: str) -> str:
    return runtime.run("state", container_id, env=PYTHON_ONLY, check=True).stdout


def wait_stopped(runtime: Runtime, container_id: str) -> None:
    deadline = time.monotonic() + 10
    while json.loads(python_state(runtime, container_id))["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_front_answers_a_container_s_whole_life(runtime: Runtime, front_only: Runtime) -> None:
    annotations = {"org.example/ünïcode": "a \"quoted\" \\ value", "empty": ""}
    bundle = runtime.bundle(["sleep", "600"], annotations=annotations)
    container_id = runtime.new_id("front")
    runtime.run("create", "--bundle", bundle, container_id, check=True)

    printed = answered(front_only, "state", container_id)
    assert printed == python_state(runtime, container_id)
    state = json.loads(printed)
    assert state["status"] == "created" and state["pid"] > 0 and state["annotations"] == annotations
    # The global flags podman and containerd pass, in both spellings.
    log = runtime.work_dir / "log"
    assert answered(front_only, "--log", str(log), "--log-format=json", "--systemd-cgroup", "state",
                    container_id) == printed
    assert not log.exists()

    answered(front_only, "start", container_id)
    assert not (runtime.state_dir(container_id) / "exec.fifo").exists()
    printed = answered(front_only, "state", container_id)
    assert printed == python_state(runtime, container_id) and json.loads(printed)["status"] == "running"
    answered(front_only, "kill", container_id, "0")
    answered(front_only, "kill", container_id, "sigkill")
    wait_stopped(runtime, container_id)
    printed = answered(front_only, "state", container_id)
    assert printed == python_state(runtime, container_id)
    assert (json.loads(printed)["status"], json.loads(printed)["pid"]) == ("stopped", 0)

    answered(front_only, "delete", container_id)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_the_front_deletes_a_created_container_s_remains_only_through_python(runtime: Runtime,
                                                                           front_only: Runtime) -> None:
    container_id = runtime.new_id("front")
    runtime.run("create", "--bundle", runtime.bundle(["sleep", "600"]), container_id, check=True)
    handed_over(front_only, "delete", container_id)             # created: its init must be killed
    handed_over(front_only, "delete", "--force", container_id)
    handed_over(front_only, "start", container_id, env=PYTHON_ONLY)
    answered(front_only, "kill", container_id, "KILL")           # a created container takes signals
    wait_stopped(runtime, container_id)
    handed_over(front_only, "start", container_id)              # stopped: Python's words
    handed_over(front_only, "kill", container_id, "KILL")       # not running: Python's words
    handed_over(front_only, "kill", "--all", container_id, "KILL")
    answered(front_only, "delete", "-f", container_id)
    assert not runtime.state_dir(container_id).exists()


def test_what_the_front_leaves_to_python(runtime: Runtime, front_only: Runtime) -> None:
    container_id = runtime.new_id("front")
    runtime.run("create", "--bundle", runtime.bundle(["sleep", "600"]), container_id, check=True)
    for args in (["state", "nosuchid"], ["state", "bad/id"], ["state", "a" * 256], ["--debug", "state", container_id],
                 ["state", container_id, "extra"], ["--root"], ["state"], ["list"], ["list", "-q"], ["--version"],
                 ["kill", container_id, "RTMIN+1"], ["kill", container_id, "65"], ["kill", container_id, "NOSUCH"],
                 ["kill", "-s", "KILL", container_id], ["--log-format", "xml", "state", container_id],
                 ["--root", str(runtime.work_dir / "nowhere"), "state", container_id], ["ps", container_id]):
        handed_over(front_only, *args)
    handed_over(front_only, "state", container_id, env=PYTHON_ONLY)
    handed_over(front_only, "state", container_id, env={"ROOTLESS_FAULT": "nothing"})
    answered(front_only, "state", container_id)
    # state.json changed behind the runtime's back (the same bytes, written again): its view no
    # longer matches, and Python reads the record.
    path = runtime.state_dir(container_id) / "state.json"
    text = path.read_bytes()
    time.sleep(0.01)
    path.write_bytes(text)
    handed_over(front_only, "state", container_id)
    handed_over(front_only, "start", container_id)
    path.write_text("{corrupt")
    result = runtime.run("state", container_id)
    assert result.returncode == 1 and "corrupt" in result.stderr
    runtime.run("delete", "--force", container_id, check=True)  # the init is found without the record
    runtime.assert_no_leaks(container_id)


def test_a_failed_execve_at_start_says_what_python_says(runtime: Runtime) -> None:
    """The front released the init, which answered that its execve failed: Python gets the
    answer (ROOTLESS_FRONT_ANSWER) and reports it exactly as when it released the init itself."""
    not_a_program = runtime.work_dir / "not-a-program"
    not_a_program.write_bytes(b"\x00\x01 neither ELF nor a script\n")
    not_a_program.chmod(0o755)
    chown_tree(not_a_program, runtime.user)
    bundle = runtime.bundle(["/not-a-program"])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/not-a-program", "type": "bind", "source": str(not_a_program),
                             "options": ["bind", "ro"]})
    (bundle / "config.json").write_text(json.dumps(config))
    results = []
    for env in (None, PYTHON_ONLY):
        container_id = runtime.new_id("front")
        runtime.run("create", "--bundle", bundle, container_id, check=True)
        started = runtime.run("start", container_id, env=env)
        results.append((started.returncode, started.stdout, started.stderr.replace(container_id, "ID")))
        assert not (runtime.state_dir(container_id) / "exec.fifo").exists()
        runtime.run("delete", "--force", container_id, check=True)
    assert results[0] == results[1]
    assert results[0][0] == 1 and results[0][2] == "rootless: exec /not-a-program: exec format error\n"


def test_python_judges_an_answer_handed_over(rootless_runtime: Runtime) -> None:
    """The contract with Python (rootless/commands/start.py): what the init answered, in hex."""
    runtime = rootless_runtime
    container_id = runtime.new_id("front")
    runtime.run("create", "--bundle", runtime.bundle(["sleep", "600"]), container_id, check=True)
    for answer, said in ((b"", f"cannot start container {container_id}: its init exited"),
                         (b"1the hook failed", f"cannot start container {container_id}: the hook failed"),
                         (b"0e2 /x", "exec /x: no such file or directory")):
        result = runtime.run("start", container_id, env=PYTHON_ONLY | {"ROOTLESS_FRONT_ANSWER": answer.hex()})
        assert (result.returncode, result.stderr) == (1, f"rootless: {said}\n")
    result = runtime.run("start", container_id, env=PYTHON_ONLY | {"ROOTLESS_FRONT_ANSWER": "zz"})
    assert result.returncode == 1 and "not hex" in result.stderr
    runtime.run("delete", "--force", container_id, check=True)


def test_the_view_is_not_written_for_a_record_without_the_init_s_start_time(tmp_path: Path) -> None:
    from rootless.front import view
    (tmp_path / "front").write_text("old")
    view.prepare(str(tmp_path), {"pid": 1, "pid_start": None}, "{}\n", os.stat(tmp_path))()
    assert not (tmp_path / "front").exists()
    view.prepare(str(tmp_path), {"pid": 1, "pid_start": 5, "cgroup": {"path": "/a\nb"}}, "{}\n", os.stat(tmp_path))()
    assert not (tmp_path / "front").exists()
    view.prepare(str(tmp_path), {"pid": 7, "pid_start": 5, "network": {"pid": 3}}, "{}\n", os.stat(tmp_path))()
    lines = (tmp_path / "front").read_text().splitlines()
    assert lines[0] == "rootless-front 1" and lines[2:6] == ["init 7 5", "cgroup ", "teardown 1", "notify 0"]


def _stopped_stage(cli_pid: int) -> int:
    """The namespace stage of the create at cli_pid, stopped at nsstage:waiting (its job not
    read yet): the CLI process's child, stopped."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[0] == "T" and int(fields[1]) == cli_pid:
                    return int(name)
        time.sleep(0.02)
    raise AssertionError("the namespace stage never reached nsstage:waiting")


@pytest.mark.parametrize("front", (True, False), ids=("front", "python-only"))
def test_create_s_namespace_stage_starts_beside_python(rootless_runtime: Runtime, front: bool) -> None:
    """Through the front, the stage is a Python of its own that the front started (the front's
    variable in its environment); without the front, a fork of the CLI process. Either way it is
    the CLI's child, its command line the CLI's, and a stage that dies before its job is one line."""
    runtime = rootless_runtime
    bundle = runtime.bundle(["true"])
    container_id = runtime.new_id("stage")
    env = {"ROOTLESS_FAULT": "nsstage:waiting=stop", **({} if front else PYTHON_ONLY)}
    cli = runtime.popen("create", "--bundle", str(bundle), container_id, env=env)
    stage = _stopped_stage(cli.pid)
    command_line = Path(f"/proc/{stage}/cmdline").read_bytes().split(b"\0")
    environment = Path(f"/proc/{stage}/environ").read_bytes().split(b"\0")
    assert container_id.encode() in command_line, command_line
    assert any(v.startswith(b"ROOTLESS_NAMESPACE_STAGE=") for v in environment) is front
    os.kill(stage, 9)
    out, err = cli.communicate(timeout=20)
    assert cli.returncode == 1 and err.splitlines() == [
        "rootless: the namespace stage was killed by signal 9 (SIGKILL) before the container was ready"], err
    runtime.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("args", (("create", "--bundle", "{missing}", "x"), ("create", "--help"), ("run",),
                                  ("create", "--bundle", "{refused}", "x")))
def test_a_create_that_never_gives_the_front_s_stage_a_job_ends_it(runtime: Runtime, args: tuple[str, ...]) -> None:
    """The stage waits for its job stopped (nsstage:waiting=stop), so only the CLI ending it
    ends it: a usage error, help, a missing or refused bundle leave no process."""
    refused = runtime.bundle(["true"])
    (refused / "config.json").write_text('{"ociVersion": "1.0.2", "process": {"user": {"uid": "zero"}}}')
    argv = [a.format(missing=runtime.work_dir / "no-such-bundle", refused=refused) for a in args]
    runtime.run(*argv, env={"ROOTLESS_FAULT": "nsstage:waiting=stop"})
    from helpers import leaks
    assert leaks.processes_mentioning("ROOTLESS_NAMESPACE_STAGE=") == []
