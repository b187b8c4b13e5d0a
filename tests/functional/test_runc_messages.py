"""Messages where clients read them, as runc 1.1.5 gives them: the words of lifecycle errors
(containerd matches "container not running" and "does not exist", podman "does not exist"),
their exit statuses, and the --log file's logrus lines (text and JSON), with warnings and
--debug lines in the file only. Each case runs under runc as well, on the same state."""

import json
import os
import re
from pathlib import Path

import pytest

from helpers.bundle import make_config
from helpers.runtime import RUNC, Runtime

HAVE_RUNC = os.access(RUNC, os.X_OK)
TEXT_LINE = re.compile(r'^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=(error|warning|debug) msg=(".*"|\S*)$')


def lifecycle_messages(runtime: Runtime) -> tuple[str, list[tuple[str, int, str]]]:
    """The container id, and (step, exit status, stderr) through the error cases of the
    lifecycle verbs."""
    overrides = {}
    if runtime.binary == RUNC and runtime.rootless:
        overrides = {"linux": {"uidMappings": [{"containerID": 0, "hostID": runtime.user.uid, "size": 1}],
                               "gidMappings": [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]}}
    bundle = runtime.bundle(["sleep", "600"], **overrides)
    cid = runtime.new_id("msg")
    steps = [("create", ("create", "--bundle", bundle, cid)), ("create again", ("create", "--bundle", bundle, cid)),
             ("start", ("start", cid)), ("start running", ("start", cid)),
             ("delete running", ("delete", cid)), ("kill", ("kill", cid, "9")),
             ("wait", None),
             ("kill stopped", ("kill", cid, "15")), ("start stopped", ("start", cid)),
             ("exec stopped", ("exec", cid, "true")), ("delete", ("delete", cid)),
             ("state unknown", ("state", cid)), ("kill unknown", ("kill", cid, "9")),
             ("start unknown", ("start", cid)), ("delete unknown", ("delete", cid)),
             ("delete -f unknown", ("delete", "-f", cid)), ("exec unknown", ("exec", cid, "true"))]
    seen = []
    for name, args in steps:
        if args is None:
            runtime.wait_for_status(cid, "stopped")
            continue
        result = runtime.run(*args)
        seen.append((name, result.returncode, result.stderr))
    return cid, seen


def runc_message(stderr: str) -> str:
    """The msg of runc's error line on stderr, less the "runc create failed: " and "exec
    failed: " framing."""
    found = re.findall(r'level=error msg="(.*)"', stderr)
    message = found[-1] if found else stderr.strip()
    return re.sub(r"^(runc \w+ failed|exec failed): ", "", message)


@pytest.mark.skipif(not HAVE_RUNC, reason=f"{RUNC} is missing (tests/run installs runc)")
def test_lifecycle_errors_say_what_runc_says(runtime: Runtime) -> None:
    cid, ours = lifecycle_messages(runtime)
    rootless_binary = runtime.binary
    runtime.binary = RUNC
    try:
        runc_cid, theirs = lifecycle_messages(runtime)
    finally:
        runtime.binary = rootless_binary
    for (step, code, stderr), (_, runc_code, runc_stderr) in zip(ours, theirs):
        assert code == runc_code, (step, stderr, runc_stderr)
        if runc_code == 0:
            assert stderr == "", (step, stderr)
            continue
        words = runc_message(runc_stderr).replace(runc_cid, cid)
        if step == "delete running":  # runc names the status after the words: ours too, and a hint
            words = words.rsplit(":", 1)[0]
        assert words in stderr, (step, stderr, runc_stderr)
        assert len(stderr.splitlines()) == 1, (step, stderr)


def test_log_file_lines_are_logrus_lines(runtime: Runtime) -> None:
    text_log, json_log = runtime.work_dir / "text.log", runtime.work_dir / "json.log"
    unknown = runtime.new_id("msg")
    result = runtime.run("--log", text_log, "state", unknown)
    assert result.returncode == 1 and "container does not exist" in result.stderr  # errors: file and stderr
    line, = text_log.read_text().splitlines()
    assert TEXT_LINE.match(line), line
    assert line.endswith(f' level=error msg="container does not exist: {unknown}"')
    result = runtime.run("--log", json_log, "--log-format", "json", "kill", unknown, "9")
    assert result.returncode == 1
    line, = json_log.read_text().splitlines()
    assert list(json.loads(line)) == ["level", "msg", "time"]  # logrus's key order
    assert json.loads(line)["msg"] == f"container does not exist: {unknown}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", json.loads(line)["time"])


def test_warnings_and_debug_go_to_the_log_only(runtime: Runtime) -> None:
    """A warning (here: a relative mount destination, which runc warns about too) and the
    --debug lines land in the --log file, and nothing of ours reaches stderr, which under
    conmon is the container's."""
    log = runtime.work_dir / "runtime.log"
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}]
    bundle = runtime.bundle(["sh", "-c", "echo out; echo err >&2"], mounts=mounts)
    result = runtime.run("--debug", "--log", log, "run", "--bundle", bundle, runtime.new_id("msg"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    lines = log.read_text().splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), lines
    levels = [TEXT_LINE.match(line).group(1) for line in lines]
    assert levels.count("warning") == 1 and "debug" in levels and "error" not in levels
    assert any("mount destination mnt is not absolute" in line for line in lines)


def test_without_a_log_warnings_go_to_stderr(runtime: Runtime) -> None:
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}]
    bundle = runtime.bundle(["true"], mounts=mounts)
    result = runtime.run("run", "--bundle", bundle, runtime.new_id("msg"))
    assert result.returncode == 0
    assert result.stderr.startswith("rootless: warning: mount destination mnt is not absolute")


def test_text_values_are_quoted_as_logrus_quotes_them() -> None:
    from rootless import log
    stamp = "2026-11-29T08:00:00Z"
    assert log.format_line("error", "plain", "text", stamp) == 'time="2026-11-29T08:00:00Z" level=error msg=plain'
    assert log.format_line("warning", 'say "hi"\tnow\\', "text", stamp) == \
        'time="2026-11-29T08:00:00Z" level=warning msg="say \\"hi\\"\\tnow\\\\"'
    assert log.format_line("debug", "a<b&c", "json", stamp) == \
        '{"level":"debug","msg":"a\\u003cb\\u0026c","time":"2026-11-29T08:00:00Z"}'
