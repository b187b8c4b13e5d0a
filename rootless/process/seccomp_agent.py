"""The hand-off to a seccomp agent at linux.seccomp.listenerPath, as runc does it: one message
on a unix socket, the container process's state as JSON with the notification fd (SCM_RIGHTS).
For the container init and for `exec`; the socket is a host path, so both connect while the
host's root is still theirs."""

import os

from rootless import jsonlite as json
from rootless.process import seccomp
from rootless.linux import unixsock
from rootless.errors import RootlessError


def connect(path: str):
    return unixsock.connect(path, "the seccomp agent at linux.seccomp.listenerPath")


def load_and_hand_over(seccomp_filter, sock, socket_module, config: dict, *, container_id: str, bundle: str,
                       status: str, pid: int, init_pid: int) -> None:
    """Load the filter, then send the agent its notification fd. pid: the host PID of the
    process the filter is for; init_pid: the container's (the same for the init)."""
    fd = seccomp.load(seccomp_filter)
    message = {
        "ociVersion": config.get("ociVersion", ""), "fds": ["seccompFd"], "pid": pid,
        "metadata": config["linux"]["seccomp"].get("listenerMetadata", ""),
        "state": {"ociVersion": config.get("ociVersion", ""), "id": container_id, "status": status,
                  "pid": init_pid, "bundle": bundle, "annotations": config.get("annotations", {})},
    }
    try:
        socket_module.send_fds(sock, [json.dumps(message).encode()], [fd])
    except OSError as err:
        raise RootlessError(f"send the seccomp notification fd to the agent: {err.strerror}") from None
    finally:
        sock.close()
        os.close(fd)
