"""slirp4netns attached to a container's network namespace: tap0 10.0.2.100/24, gateway
10.0.2.2, DNS 10.0.2.3. Readiness comes on --ready-fd; it exits when --exit-fd closes (the
watcher in netns.spawn holds the other end); ports are published through --api-socket."""

import os
import select

from netns import spawn
from rootless import jsonlite as json
from rootless.errors import RootlessError

API_SOCKET = "slirp4netns.sock"
GUEST_ADDR = "10.0.2.100"
DNS_ADDR = "10.0.2.3"


def command(binary: str, init_pid: int, api_socket: str, *, ready_fd: int, exit_fd: int) -> list[str]:
    return [binary, "--configure", "--mtu=65520", "--disable-host-loopback", f"--ready-fd={ready_fd}",
            f"--exit-fd={exit_fd}", f"--api-socket={api_socket}", str(init_pid), "tap0"]


def start(plan, init_pid: int, state_dir: str, *, userns: bool) -> tuple[dict, int]:
    """Start slirp4netns; returns (what detach() needs, the write end of its exit pipe, which
    the caller hands to the watcher). Raises RootlessError and leaves nothing behind."""
    binary = spawn.require("slirp4netns", "slirp4netns")
    api_socket = os.path.join(state_dir, API_SOCKET)
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()
    pid, err_fd = spawn.spawn(command(binary, init_pid, api_socket, ready_fd=3, exit_fd=4), (ready_w, exit_r))
    os.close(ready_w)
    os.close(exit_r)
    try:
        ready, _, _ = select.select([ready_r], [], [], 10.0)
        answer = os.read(ready_r, 1) if ready else b""
        if answer != b"1":
            spawn.stop(pid, None)
            spawn.wait_exit(pid, 1.0)
            reason = spawn.read_error(err_fd) or ("no answer within 10 s" if not ready else "it exited")
            spawn.remove([api_socket])
            raise RootlessError(f"start slirp4netns: {reason}")
    except BaseException:
        os.close(exit_w)
        raise
    finally:
        os.close(ready_r)
        os.close(err_fd)
    return {"helper": "slirp4netns", "helper_pid": pid, "files": [api_socket], "api_socket": api_socket}, exit_w


def api_call(api_socket: str, request: dict) -> dict:
    import _socket
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(10.0)
        sock.connect(api_socket)
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(_socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as err:
        raise RootlessError(f"slirp4netns API {api_socket}: {err.strerror or err}") from None
    finally:
        sock.close()
    try:
        return json.loads(data)
    except ValueError:
        raise RootlessError(f"slirp4netns API {api_socket}: unreadable answer {data[:200]!r}") from None


def publish(api_socket: str, ports: list) -> None:
    for port in ports:
        for host_port, container_port in port.pairs():
            answer = api_call(api_socket, {"execute": "add_hostfwd", "arguments": {
                "proto": port.proto, "host_addr": port.host_ip, "host_port": host_port,
                "guest_addr": GUEST_ADDR, "guest_port": container_port}})
            if "error" in answer:
                desc = answer["error"].get("desc", answer["error"]) if isinstance(answer["error"], dict) else answer["error"]
                raise RootlessError(f"slirp4netns: publish {port.proto} {port.host_ip}:{host_port} -> "
                                    f"{container_port}: {desc} (check rootless.ports: is the host port in use?)")
