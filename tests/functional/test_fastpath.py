"""The short verbs through rootless.fastpath (the installed command) and through the CLI alone
print the same bytes, exit with the same code and log the same lines, for each verb's success
and its errors (tests/unit/test_cli_args.py checks that both parse alike)."""

import json
import subprocess
import time
from pathlib import Path

from helpers.runtime import Runtime
from rootless import fastpath

# The CLI alone, as the command was before the fast path: the same entry, rootless.cli's main.
CLI_ONLY = "from rootless import cli, fastpath; fastpath.main_and_exit(cli.main)"


def through_the_cli(runtime: Runtime, *args: str) -> subprocess.CompletedProcess:
    argv = runtime.python_command(CLI_ONLY) + ["--root", str(runtime.state_root), *args]
    return subprocess.run(argv, env=runtime._env(None), cwd=runtime.work_dir, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def through_both(runtime: Runtime, *args: str) -> tuple:
    assert fastpath.recognise(["--root", "/r", *args]) is not None, args
    fast, cli = runtime.run(*args), through_the_cli(runtime, *args)
    return (fast.returncode, fast.stdout, fast.stderr), (cli.returncode, cli.stdout, cli.stderr)


def same(runtime: Runtime, *args: str) -> tuple:
    fast, cli = through_both(runtime, *args)
    assert fast == cli, args
    return fast


def wait_stopped(runtime: Runtime, container_id: str) -> None:
    deadline = time.monotonic() + 10
    while runtime.state(container_id)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_short_verbs_answer_alike_through_both_paths(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    a, b = runtime.new_id("fast"), runtime.new_id("cli")
    for container_id in (a, b):
        runtime.run("create", "--bundle", bundle, container_id, check=True)

    assert same(runtime, "state", a)[0] == 0 and '"created"' in same(runtime, "state", a)[1]
    assert same(runtime, "list")[1].count("created") == 2
    assert same(runtime, "list", "-q")[1].split() == sorted([a, b])
    # Success of a verb that changes the container: one container per path, the same answer.
    started = [runtime.run("start", a), through_the_cli(runtime, "start", b)]
    assert [(r.returncode, r.stdout, r.stderr) for r in started] == [(0, "", "")] * 2
    assert same(runtime, "start", a)[0] == 1                          # already running
    assert '"running"' in same(runtime, "state", a)[1]
    assert same(runtime, "delete", a)[0] == 1                         # running: needs --force
    assert same(runtime, "kill", a, "NOSUCHSIGNAL")[0] == 1
    same(runtime, "kill", a, "0")
    for verb in (("state",), ("start",), ("kill",), ("delete",)):
        code, _, stderr = same(runtime, *verb, "nosuchid")
        assert code == 1 and "does not exist" in stderr
    assert same(runtime, "delete", "--force", "nosuchid") == (0, "", "")
    assert same(runtime, "state", "bad/id")[0] == 1

    killed = [runtime.run("kill", a, "KILL"), through_the_cli(runtime, "kill", b, "KILL")]
    assert [(r.returncode, r.stdout, r.stderr) for r in killed] == [(0, "", "")] * 2
    for container_id in (a, b):
        wait_stopped(runtime, container_id)
    assert '"stopped"' in same(runtime, "state", a)[1]
    assert same(runtime, "start", a)[0] == 1                          # stopped
    deleted = [runtime.run("delete", a), through_the_cli(runtime, "delete", b)]
    assert [(r.returncode, r.stdout, r.stderr) for r in deleted] == [(0, "", "")] * 2
    assert same(runtime, "list", "-q") == (0, "", "")


def test_failures_log_alike_through_both_paths(runtime: Runtime) -> None:
    logs = []
    for run in (runtime.run, lambda *args: through_the_cli(runtime, *args)):
        log = Path(runtime.work_dir) / f"log-{len(logs)}.json"
        result = run("--log", str(log), "--log-format", "json", "kill", "nosuchid", "9")
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        logs.append((result.returncode, result.stderr, [{k: v for k, v in line.items() if k != "time"} for line in lines]))
    assert logs[0] == logs[1] and logs[0][0] == 1 and "does not exist" in logs[0][2][0]["msg"]
    file_root = Path(runtime.work_dir) / "a-file"
    file_root.write_text("")
    results = [runtime.run("--root", str(file_root), "state", "x"),
               through_the_cli(runtime, "--root", str(file_root), "state", "x")]
    assert results[0].returncode == results[1].returncode == 1
    assert results[0].stderr == results[1].stderr and "not a directory" in results[0].stderr


def test_create_and_run_answer_alike_through_both_paths(runtime: Runtime) -> None:
    """create and run, parsed by the fast path with their own Commands (rootless.commands.flags)
    or by the CLI with all its tables: the same output, exit code and errors."""
    bundle = runtime.bundle(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert same(runtime, "run", "--bundle", str(bundle), runtime.new_id("run")) == (3, "out\n", "err\n")
    existing = runtime.new_id("created")
    runtime.run("create", "--bundle", str(bundle), existing, check=True)
    try:
        code, _, stderr = same(runtime, "create", "--bundle", str(bundle), existing)
        assert code == 1 and existing in stderr
        missing = str(Path(runtime.work_dir) / "no-such-bundle")
        code, _, stderr = same(runtime, "run", "-b", missing, runtime.new_id("missing"))
        assert code == 1 and "no such directory" in stderr
        assert same(runtime, "create", "--preserve-fds", "4", "-b", str(bundle), runtime.new_id("fds"))[0] == 1
    finally:
        runtime.run("delete", "--force", existing)
    assert same(runtime, "list", "-q") == (0, "", "")
