"""sd_notify through the container, as runc does it: `rootless run` can be the ExecStart of a
systemd Type=notify unit.

When the caller of create/run has NOTIFY_SOCKET, the container gets a directory of its state
directory, `notify/`, bind-mounted read-only at /run/notify, and NOTIFY_SOCKET=/run/notify/
notify.sock in its environment (runc's place; podman's conmon uses /run/notify too). `start`
(and `run`) bind a datagram socket there before releasing the init, then relay what the
container says to the caller's NOTIFY_SOCKET until READY=1 arrives: STATUS= lines as they
come, READY=1 with MAINPID= set to the init's host PID (a PID inside the container means
nothing to systemd). Only then does `start` return.

socket is imported only here, and this module only when NOTIFY_SOCKET is set.
"""

import os
import socket

from rootless.oci import mounts
from rootless.linux import procfs, unixsock
from rootless.linux import syscalls as sc

DIRECTORY = "notify"              # in the state directory
CONTAINER_DIRECTORY = "/run/notify"
SOCKET_NAME = "notify.sock"
CONTAINER_SOCKET = f"{CONTAINER_DIRECTORY}/{SOCKET_NAME}"
_RELAYED = (b"READY=", b"STATUS=", b"ERRNO=", b"EXTEND_TIMEOUT_USEC=")


def plan_mounts(state_dir: str) -> list:
    flags = sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    return [mounts.Mount(CONTAINER_DIRECTORY, None, os.path.join(state_dir, DIRECTORY), flags, "", [], True, None)]


def make_directory(state_dir: str) -> None:
    """World-searchable: the container's user may be any ID mapped in it."""
    path = os.path.join(state_dir, DIRECTORY)
    os.mkdir(path)
    os.chmod(path, 0o755)


def listen(state_dir: str) -> socket.socket:
    """The container's end, bound before the init is released, so nothing it sends is lost."""
    path = os.path.join(state_dir, DIRECTORY, SOCKET_NAME)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    unixsock.via_short_path(path, sock.bind)
    os.chmod(path, 0o777)  # any user of the container may notify
    return sock


def _address(value: str) -> str:
    return "\0" + value[1:] if value.startswith("@") else value


def relay_until_ready(sock: socket.socket, record: dict, host_socket: str) -> bool:
    """Relay the container's notifications to host_socket until READY=1; False when the init
    exits first."""
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.settimeout(0.1)
    try:
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if not procfs.is_alive(record["pid"], record.get("pid_start")):
                    return False
                continue
            lines = [line for line in data.split(b"\n") if line.startswith(_RELAYED)]
            ready = b"READY=1" in lines
            if ready:
                lines.append(b"MAINPID=%d" % record["pid"])
            if lines:
                out.sendto(b"\n".join(lines) + b"\n", _address(host_socket))
            if ready:
                return True
    finally:
        out.close()
        sock.close()
