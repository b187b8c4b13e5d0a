"""rootless-recvtty, the console-socket receiver shipped with rootless, with real containers."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers.runtime import Runtime
from helpers.users import command_as


@pytest.fixture
def socket_folder(runtime: Runtime):
    # sun_path holds 108 bytes: a short folder of the runtime user's own.
    folder = Path(tempfile.mkdtemp(prefix="recvtty-", dir="/tmp"))
    os.chown(folder, runtime.user.uid, runtime.user.gid)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_receiver(runtime: Runtime, folder: Path, *args: str, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL):
    binary = os.path.join(os.path.dirname(runtime.binary), "rootless-recvtty")
    receiver = subprocess.Popen(command_as(runtime.user, [binary, *args, str(folder / "sock")]), stdin=stdin,
                                stdout=stdout, stderr=subprocess.PIPE, env=runtime._env(None))
    deadline = time.monotonic() + 10
    while not (folder / "sock").exists():
        assert receiver.poll() is None, receiver.stderr.read()
        assert time.monotonic() < deadline, "rootless-recvtty did not listen"
        time.sleep(0.02)
    return receiver


def test_single_mode_proxies_the_terminal(runtime: Runtime, socket_folder: Path) -> None:
    output = runtime.work_dir / "recvtty.out"
    with open(output, "wb") as out:
        receiver = start_receiver(runtime, socket_folder, "--pid-file", str(socket_folder / "pid"),
                                  stdin=subprocess.PIPE, stdout=out)
    assert int((socket_folder / "pid").read_text()) == receiver.pid  # setpriv execs it: one PID
    bundle = runtime.bundle(["sh", "-c", "tty; read line; echo got:$line"], terminal=True)
    container_id = runtime.new_id()
    runtime.run("create", "--console-socket", socket_folder / "sock", "--bundle", bundle, container_id, check=True)
    runtime.run("start", container_id, check=True)
    receiver.stdin.write(b"hello\n")
    receiver.stdin.flush()
    assert receiver.wait(timeout=20) == 0, receiver.stderr.read()
    text = output.read_text().replace("\r", "")
    assert "/dev/pts/0" in text and "got:hello" in text
    assert not (socket_folder / "sock").exists()
    runtime.wait_for_status(container_id, "stopped")
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_null_mode_drains_every_terminal(runtime: Runtime, socket_folder: Path) -> None:
    receiver = start_receiver(runtime, socket_folder, "--mode", "null", "--pid-file", str(socket_folder / "pid"))
    try:
        # 2 MB each: far more than a pty buffers, so each finishes only if its output is read.
        bundle = runtime.bundle(["sh", "-c", "yes 0123456789012345678901234567890123456789 | head -c 2000000"],
                                terminal=True)
        for _ in range(2):
            container_id = runtime.new_id()
            runtime.run("create", "--console-socket", socket_folder / "sock", "--bundle", bundle, container_id,
                        check=True)
            runtime.run("start", container_id, check=True)
            assert runtime.wait_for_status(container_id, "stopped", timeout=30)["status"] == "stopped"
            runtime.run("delete", container_id, check=True)
            runtime.assert_no_leaks(container_id, bundle=bundle)
        pid_text = (socket_folder / "pid").read_text()
        assert pid_text.isdigit() and Path(f"/proc/{pid_text}/cmdline").read_bytes().count(b"rootless-recvtty")
        assert receiver.poll() is None
        receiver.terminate()
        assert receiver.wait(timeout=10) == 128 + 15
        assert not (socket_folder / "sock").exists()  # removed on SIGTERM
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()


def test_bad_arguments_are_one_line(runtime: Runtime, socket_folder: Path) -> None:
    binary = os.path.join(os.path.dirname(runtime.binary), "rootless-recvtty")
    for args, expected in ((["--mode", "loud", "x"], "expected single or null"), ([], "give one SOCKET_PATH")):
        result = subprocess.run(command_as(runtime.user, [binary, *args]), capture_output=True, text=True,
                                env=runtime._env(None))
        assert result.returncode == 1 and expected in result.stderr and len(result.stderr.splitlines()) == 1
    (socket_folder / "taken").write_text("")
    result = subprocess.run(command_as(runtime.user, [binary, str(socket_folder / "taken")]), capture_output=True,
                            text=True, env=runtime._env(None))
    assert result.returncode == 1 and "remove it or choose another path" in result.stderr
