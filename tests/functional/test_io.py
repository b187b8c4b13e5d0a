"""File descriptors into the container: stdio, --preserve-fds, LISTEN_FDS, --console-socket."""

import array
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path

import pytest

from helpers.runtime import Runtime
from helpers.terminal import HeldTerminal


def run_with_fds(runtime: Runtime, fds: dict[int, int], args: list[str], prelude: str = "") -> subprocess.CompletedProcess:
    """Run the runtime with `fds` (target number -> our fd) placed by a bash wrapper: the test
    process must not dup2 onto low numbers, which pytest's own capture uses."""
    moves = " ".join(f"{target}>&{source}" for target, source in fds.items())
    wrapper = ["bash", "-c", f'{prelude}exec {moves}; exec "$@"', "bash", *runtime.command(*args)]
    return subprocess.run(wrapper, pass_fds=tuple(fds.values()), capture_output=True, text=True, timeout=60,
                          cwd=runtime.work_dir, env=runtime._env(None), stdin=subprocess.DEVNULL)


def test_only_stdio_and_preserved_fds_reach_the_process(runtime: Runtime) -> None:
    read_end, write_end = os.pipe()
    leaked_r, leaked_w = os.pipe()
    bundle = runtime.bundle(["sh", "-c", "echo through-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"])
    container_id = runtime.new_id()
    try:
        result = run_with_fds(runtime, {3: write_end, 4: leaked_w},
                              ["run", "--preserve-fds", "1", "--bundle", str(bundle), container_id])
    finally:
        os.close(write_end)
        os.close(leaked_w)
    assert result.returncode == 0, result.stderr
    assert os.read(read_end, 100) == b"through-fd3\n"
    # 3 is the preserved pipe and 4 is the directory ls reads: a leaked fd 4 would push it to 5.
    assert result.stdout.split() == ["0", "1", "2", "3", "4"]
    os.close(read_end)
    os.close(leaked_r)
    runtime.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("env", ({}, {"ROOTLESS_NO_FRONT": "1"}), ids=("front", "python-only"))
def test_preserving_an_fd_the_caller_has_not_open_is_refused(runtime: Runtime, env: dict) -> None:
    """Only fds 0-2 open: --preserve-fds 2 names fds 3 and 4, which the runtime's own fds (the
    socket to its namespace stage) must not stand in for."""
    bundle = runtime.bundle(["true"])
    container_id = runtime.new_id()
    result = runtime.run("run", "--preserve-fds", "2", "--bundle", str(bundle), container_id, env=env)
    assert (result.returncode, result.stderr) == (1, "rootless: --preserve-fds 2: fd 3 is not open\n"), result
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_listen_fds_are_passed_with_listen_pid_one(runtime: Runtime) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    bundle = runtime.bundle(["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; readlink /proc/self/fd/3"])
    try:
        # LISTEN_PID names the runtime's own PID, which `exec` keeps.
        result = run_with_fds(runtime, {3: listener.fileno()}, ["run", "--bundle", str(bundle), runtime.new_id()],
                              prelude="export LISTEN_FDS=1 LISTEN_PID=$$; ")
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    first, link = result.stdout.splitlines()
    assert first == "1 1"
    assert link.startswith("socket:[")


class ConsoleReceiver:
    """A minimal recvtty: accepts one connection, takes the pty master sent with SCM_RIGHTS,
    and collects what the container writes to its terminal."""

    def __init__(self, path: Path, owner: tuple[int, int]):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        os.chown(path, *owner)
        self.server.listen(1)
        self.output = b""
        self.name = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        fds = array.array("i")
        message, ancillary, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
        self.name = message
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        conn.close()
        master = fds[0]
        os.write(master, b"typed-in\n")
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the container side closed
                break
            if not chunk:
                break
            self.output += chunk
        os.close(master)


def test_console_socket_receives_the_pty_master(runtime: Runtime) -> None:
    # sun_path holds 108 bytes: a short folder of the test user's own.
    folder = Path(tempfile.mkdtemp(prefix="console-", dir="/tmp"))
    os.chown(folder, runtime.user.uid, runtime.user.gid)
    path = folder / "sock"
    receiver = ConsoleReceiver(path, (runtime.user.uid, runtime.user.gid))
    bundle = runtime.bundle(["sh", "-c", "read line; echo got:$line; tty; [ -t 0 ] && echo stdin-is-tty"],
                            terminal=True)
    container_id = runtime.new_id()
    runtime.run("create", "--console-socket", path, "--bundle", bundle, container_id, check=True)
    runtime.run("start", container_id, check=True)
    receiver.thread.join(timeout=20)
    text = receiver.output.decode().replace("\r", "")
    assert "got:typed-in" in text
    assert "/dev/pts/0" in text and "stdin-is-tty" in text
    assert receiver.name.startswith(b"/dev/pts/")
    deadline = time.monotonic() + 10
    while runtime.state(container_id)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)
    shutil.rmtree(folder)


def test_terminal_without_console_socket_is_refused_for_create(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"], terminal=True)
    container_id = runtime.new_id()
    result = runtime.run("create", "--bundle", bundle, container_id)
    assert result.returncode == 1 and "--console-socket" in result.stderr
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_foreground_run_with_a_terminal(runtime: Runtime) -> None:
    """`run` with terminal: true and no console socket proxies the pty to the caller."""
    bundle = runtime.bundle(["sh", "-c", "tty; exit 4"], terminal=True)
    result = runtime.run("run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 4, result.stderr
    assert "/dev/pts/0" in result.stdout


def test_foreground_run_uses_the_callers_terminal(runtime: Runtime) -> None:
    """The caller's terminal: raw while the container runs, its size copied to the pty at start
    and on SIGWINCH, its settings restored afterwards."""
    terminal = HeldTerminal(31, 97)
    before = termios.tcgetattr(terminal.slave)
    bundle = runtime.bundle(["sh", "-c", "stty size; read line; stty size; exit 6"], terminal=True)
    run = subprocess.Popen(runtime.command("run", "--bundle", bundle, runtime.new_id()), stdin=terminal.slave,
                           stdout=terminal.slave, stderr=terminal.slave, env=runtime._env(None),
                           cwd=runtime.work_dir, start_new_session=True)
    assert terminal.read_until(b"31 97"), terminal.seen
    assert not termios.tcgetattr(terminal.slave)[3] & termios.ECHO  # raw: the container's pty echoes, not ours
    terminal.resize(40, 120)
    os.killpg(run.pid, signal.SIGWINCH)  # as the kernel does for the terminal's foreground group
    time.sleep(0.3)
    os.write(terminal.master, b"go\r")
    assert terminal.read_until(b"40 120"), terminal.seen
    assert run.wait(timeout=20) == 6
    assert termios.tcgetattr(terminal.slave) == before
    terminal.close()
