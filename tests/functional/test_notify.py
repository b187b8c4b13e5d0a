"""NOTIFY_SOCKET: what the container sends to /run/notify/notify.sock reaches the caller's
socket (STATUS, READY=1, and MAINPID as the init's host PID), and `start` returns only after
READY=1, so that `rootless run` can be a systemd Type=notify service."""

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from helpers import static
from helpers.bundle import make_config
from helpers.runtime import Runtime


@pytest.fixture(scope="module")
def sdnotify() -> Path:
    """A static sd_notify sender for the busybox containers (tests/helpers/sdnotify.c)."""
    with static.built("sdnotify") as binary:
        yield binary


class NotifySocket:
    """The caller's NOTIFY_SOCKET, as systemd would provide it: a datagram socket the runtime's
    user may send to, in a short folder (sun_path is 108 bytes)."""

    def __init__(self, runtime: Runtime):
        self.folder = Path(tempfile.mkdtemp(prefix="notify-", dir="/tmp"))
        os.chmod(self.folder, 0o755)
        self.path = self.folder / "systemd.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o777)

    def received(self) -> list[str]:
        lines = []
        self.sock.setblocking(False)
        while True:
            try:
                lines += self.sock.recv(65536).decode().splitlines()
            except BlockingIOError:
                return lines

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder)


@pytest.fixture
def notify_socket(runtime: Runtime):
    sock = NotifySocket(runtime)
    yield sock
    sock.close()


def notifying_bundle(runtime: Runtime, sdnotify: Path, script: str) -> tuple[Path, Path]:
    """A bundle running `script` with /sdnotify and a host folder at /out; (bundle, folder)."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=runtime.work_dir))
    os.chown(out, runtime.user.uid, runtime.user.gid)
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/sdnotify", "type": "bind", "source": str(sdnotify), "options": ["bind", "ro"]},
        {"destination": "/out", "type": "bind", "source": str(out), "options": ["bind"]},
    ]
    return runtime.bundle(["sh", "-c", script], mounts=mounts), out


def test_start_returns_after_ready_with_the_host_mainpid(runtime: Runtime, sdnotify: Path, notify_socket) -> None:
    env = {"NOTIFY_SOCKET": str(notify_socket.path)}
    bundle, out = notifying_bundle(runtime, sdnotify, "sleep 1; echo $NOTIFY_SOCKET > /out/env; "
                                   "/sdnotify 'STATUS=warming up'; touch /out/marker; "
                                   "/sdnotify 'READY=1\\nSTATUS=serving\\nMAINPID=1'; exec sleep 600")
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True, env=env)
    assert (runtime.state_dir(container_id) / "notify").is_dir()
    runtime.run("start", container_id, check=True, env=env)
    assert (out / "marker").exists()  # start waited for READY=1, sent after the marker
    assert (out / "env").read_text() == "/run/notify/notify.sock\n"
    pid = runtime.state(container_id)["pid"]
    lines = notify_socket.received()
    assert lines[0] == "STATUS=warming up"
    assert "READY=1" in lines and "STATUS=serving" in lines
    assert f"MAINPID={pid}" in lines and "MAINPID=1" not in lines
    runtime.run("delete", "--force", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_run_detached_is_a_type_notify_service(runtime: Runtime, sdnotify: Path, notify_socket) -> None:
    bundle, out = notifying_bundle(runtime, sdnotify, "sleep 0.5; touch /out/marker; /sdnotify READY=1; exec sleep 600")
    container_id = runtime.new_id()
    runtime.run("run", "--detach", "--bundle", bundle, container_id, check=True,
                env={"NOTIFY_SOCKET": str(notify_socket.path)})
    assert (out / "marker").exists()
    assert notify_socket.received() == ["READY=1", f"MAINPID={runtime.state(container_id)['pid']}"]
    runtime.run("delete", "--force", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_start_fails_when_the_container_exits_before_ready(runtime: Runtime, sdnotify: Path, notify_socket) -> None:
    env = {"NOTIFY_SOCKET": str(notify_socket.path)}
    bundle, _ = notifying_bundle(runtime, sdnotify, "/sdnotify 'STATUS=giving up'; exit 3")
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True, env=env)
    result = runtime.run("start", container_id, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"rootless: container {container_id} exited before it sent READY=1 to NOTIFY_SOCKET"]
    assert notify_socket.received() == ["STATUS=giving up"]
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_without_notify_socket_nothing_changes(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "echo ${NOTIFY_SOCKET:-unset}; ls /run/notify 2>&1 || true"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    assert not (runtime.state_dir(container_id) / "notify").exists()
    runtime.run("delete", container_id, check=True)
    assert runtime.run_script("echo ${NOTIFY_SOCKET:-unset}").strip() == "unset"
