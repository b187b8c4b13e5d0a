"""The shim (`--shim`): it keeps a container's stdio, log and exit code while no CLI runs, and
serves `logs`, `attach` and `wait`."""

import json
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers.runtime import Runtime, wait_until
from helpers.terminal import HeldTerminal

LINES = 40
# Numbered lines on both streams for about two seconds, then exit 7.
CHATTY = (f"i=0; while [ $i -lt {LINES} ]; do echo out$i; echo err$i >&2; i=$((i+1)); sleep 0.05; done; "
          "printf tail; exit 7")
K8S_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$")


def shim_pid(runtime: Runtime, container_id: str) -> int:
    return json.loads((runtime.state_dir(container_id) / "state.json").read_text())["shim"]["pid"]


def assert_chatty_output_and_exit_kept(runtime: Runtime, container_id: str) -> None:
    """CHATTY's exit code (wait) and every line it wrote, in order, on its stream (logs)."""
    waited = runtime.run("wait", container_id, timeout=60)
    assert (waited.returncode, waited.stdout) == (0, "7\n")
    logs = runtime.run("logs", container_id, check=True)
    assert logs.stdout == "".join(f"out{i}\n" for i in range(LINES)) + "tail"
    assert logs.stderr == "".join(f"err{i}\n" for i in range(LINES))


def running(pid: int) -> bool:
    """Alive and not a zombie (this machine's PID 1 may reap orphans late)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_output_and_exit_code_survive_killed_clients(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", CHATTY])
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--bundle", bundle, container_id, check=True)
    assert not (runtime.state_dir(container_id) / "exit.json").exists()  # back at once, still running
    shim = shim_pid(runtime, container_id)
    stat = Path(f"/proc/{shim}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[1]) != os.getpid() and int(stat[3]) != os.getsid(0)  # not ours, a session of its own
    follower = runtime.popen("logs", "--follow", container_id)
    attached = runtime.popen("attach", "--no-stdin", container_id)
    time.sleep(0.7)
    for client in (follower, attached):  # mid-stream
        client.kill()
        client.wait()
    assert_chatty_output_and_exit_kept(runtime, container_id)
    raw = (runtime.state_dir(container_id) / "ctr.log").read_bytes().splitlines()
    assert all(K8S_LINE.match(line) for line in raw), raw[:3]
    assert raw[-1].endswith(b" stdout P tail")
    exit_record = json.loads((runtime.state_dir(container_id) / "exit.json").read_text())
    assert exit_record["exit_code"] == 7 and exit_record["exited_at"].endswith("Z")
    assert wait_until(lambda: not running(shim))  # the shim is done once the exit is recorded
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_follow_prints_everything_until_exit(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", CHATTY])
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--shim-log-format", "json-lines", "--bundle", bundle, container_id, check=True)
    followed = runtime.run("logs", "-f", container_id, timeout=60)
    assert followed.returncode == 0
    assert followed.stdout == "".join(f"out{i}\n" for i in range(LINES)) + "tail"
    entries = [json.loads(line) for line in (runtime.state_dir(container_id) / "ctr.log").read_text().splitlines()]
    assert entries[0]["stream"] in ("stdout", "stderr") and entries[-1]["log"] == "tail"
    runtime.run("delete", container_id, check=True)


def test_attach_passes_input_and_returns_the_exit_code(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "while read line; do echo got:$line; done; exit 3"])
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--bundle", bundle, container_id, check=True)
    attach = runtime.popen("attach", container_id, stdin=subprocess.PIPE, text=True)
    out, err = attach.communicate("hello\nworld\n", timeout=30)  # end of input closes the container's stdin
    assert attach.returncode == 3, err
    assert out == "got:hello\ngot:world\n"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_attach_to_a_terminal_with_resize(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "read line; stty size; read line; stty size; exit 4"], terminal=True)
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--bundle", bundle, container_id, check=True)
    terminal = HeldTerminal(31, 97)
    attach = subprocess.Popen(runtime.command("attach", container_id), stdin=terminal.slave, stdout=terminal.slave,
                              stderr=terminal.slave, env=runtime._env(None), start_new_session=True)
    time.sleep(0.5)
    os.write(terminal.master, b"go\r")
    assert terminal.read_until(b"31 97"), terminal.seen
    terminal.resize(40, 120)
    os.killpg(attach.pid, signal.SIGWINCH)
    time.sleep(0.5)
    os.write(terminal.master, b"again\r")
    assert terminal.read_until(b"40 120"), terminal.seen
    assert attach.wait(timeout=20) == 4
    terminal.close()
    runtime.run("delete", container_id, check=True)


def test_rm_deletes_the_container_after_it_exits(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "sleep 0.3; exit 2"])
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--rm", "--bundle", bundle, container_id, check=True)
    assert wait_until(lambda: not runtime.state_dir(container_id).exists())
    assert wait_until(lambda: not _shims_of(container_id))
    runtime.assert_no_leaks(container_id, bundle=bundle)


def _shims_of(container_id: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if container_id.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(int(name))
            except OSError:
                pass
    return found


def test_delete_force_leaves_no_shim(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--shim", "--bundle", bundle, container_id, check=True)
    shim = shim_pid(runtime, container_id)
    runtime.run("delete", "--force", container_id, check=True)
    assert not running(shim)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_create_with_shim_then_start(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "echo started; exit 0"])
    container_id = runtime.new_id()
    runtime.run("create", "--shim", container_id, check=True, cwd=bundle)  # the bundle is the cwd
    assert runtime.state(container_id)["status"] == "created"
    assert os.readlink(f"/proc/{shim_pid(runtime, container_id)}/cwd") == "/"  # it keeps no directory busy
    runtime.run("start", container_id, check=True)
    assert runtime.run("wait", container_id, check=True).stdout == "0\n"
    assert runtime.run("logs", container_id, check=True).stdout == "started\n"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_a_failing_create_leaves_no_shim(runtime: Runtime) -> None:
    bundle = runtime.bundle(["no-such-program"])
    container_id = runtime.new_id()
    result = runtime.run("run", "--detach", "--shim", "--bundle", bundle, container_id)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ['rootless: exec: "no-such-program": executable file not found in $PATH']
    assert wait_until(lambda: not _shims_of(container_id), timeout=5)
    runtime.assert_no_leaks(container_id, bundle=bundle)
    plain = runtime.bundle(["true"])
    for args, expected in ((("--preserve-fds", "1"), "--preserve-fds"), (("--shim-log-format", "xml"), "k8s-file"),
                           (("--shim-log", "/nonexistent/dir/ctr.log"), "/nonexistent/dir/ctr.log")):
        other = runtime.new_id()
        result = runtime.run("run", "--detach", "--shim", *args, "--bundle", plain, other)
        assert result.returncode == 1 and expected in result.stderr and len(result.stderr.splitlines()) == 1
        runtime.assert_no_leaks(other, bundle=plain)


def test_verbs_need_a_shim(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--bundle", bundle, container_id, check=True)
    for verb in ("logs", "attach", "wait"):
        result = runtime.run(verb, container_id)
        assert result.returncode == 1 and "--shim" in result.stderr, verb
    runtime.run("delete", "--force", container_id, check=True)


def test_the_shim_keeps_no_descriptor_of_the_cli(runtime: Runtime) -> None:
    """A caller that reads a pipe it gave the CLI until its end is not held up by the shim."""
    read_end, write_end = os.pipe()
    bundle = runtime.bundle(["sleep", "100"])
    container_id = runtime.new_id()
    cli = runtime.popen("run", "--detach", "--shim", "--bundle", bundle, container_id, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, pass_fds=(write_end,))
    os.close(write_end)
    assert cli.wait(timeout=30) == 0
    ready, _, _ = select.select([read_end], [], [], 10)
    assert ready and os.read(read_end, 1) == b""  # every writer, the shim too, has closed it
    os.close(read_end)
    runtime.run("delete", "--force", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_foreground_run_is_a_client_of_the_shim(runtime: Runtime) -> None:
    """run --shim without -d attaches, returns the exit code, and deletes the container."""
    bundle = runtime.bundle(["sh", "-c", "read line; echo got:$line; echo to-stderr >&2; exit 3"])
    container_id = runtime.new_id()
    result = runtime.run("run", "--shim", "--bundle", bundle, container_id, input="hello\n")
    assert (result.returncode, result.stdout, result.stderr) == (3, "got:hello\n", "to-stderr\n")
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_foreground_run_of_a_process_that_exits_at_once(runtime: Runtime) -> None:
    """The shim may have stopped listening by the time the CLI connects to it: the exit code
    is the container's all the same (it was "Connection refused", most times)."""
    bundle = runtime.bundle(["sh", "-c", "exit 4"])
    for _ in range(5):
        container_id = runtime.new_id()
        result = runtime.run("run", "--shim", "--bundle", bundle, container_id)
        assert (result.returncode, result.stderr) == (4, ""), result
        runtime.assert_no_leaks(container_id, bundle=bundle)


def test_killing_the_foreground_cli_loses_nothing(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", CHATTY])
    container_id = runtime.new_id()
    foreground = runtime.popen("run", "--shim", "--bundle", bundle, container_id)
    assert runtime.wait_for_status(container_id, "running")["status"] == "running"
    time.sleep(0.5)
    foreground.kill()
    foreground.communicate()
    assert_chatty_output_and_exit_kept(runtime, container_id)
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)
