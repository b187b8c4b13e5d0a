"""The CLI's side of the shim (rootless.shim.server): start one for a container and wait until it has
created the container, or failed to."""

import os
import sys

import rootless
from rootless import jsonlite as json
from rootless.shim import logformat
from rootless.errors import RootlessError, UsageError

# The shim runs in a fresh interpreter without site: only the folder that holds the installed
# package (and its dependencies, such as _prctl) is on its path.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(rootless.__file__)))
_BOOT = f"import sys; sys.path[:0] = [{_PACKAGE_PARENT!r}]; from rootless.shim import server; server.main(sys.argv[1])"
# Socket activation is for the CLI's own child only: the shim's fds 3.. are its own.
_NOT_FOR_THE_SHIM = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def spawn(ctx, request, *, log_path: str | None, log_format: str, remove: bool,
          after_remove: list[str] | None = None) -> int:
    """Start a shim that creates the container as `request` says; returns the init's PID once
    the container is created. The shim outlives us: double-forked, in a session of its own.
    after_remove: a command (argv) the shim runs once it has removed the container (remove)."""
    if log_format not in logformat.FORMATS:
        raise UsageError(f"invalid --shim-log-format {log_format!r}: expected one of {', '.join(logformat.FORMATS)}")
    if request.preserve_fds:
        raise UsageError("--preserve-fds cannot be used with --shim: the shim owns the container's fds")
    if request.console_socket:
        raise UsageError("--console-socket cannot be used with --shim: the shim owns the terminal (use attach)")
    root = os.path.abspath(ctx.root)
    spec = {
        "root": root, "id": request.container_id, "remove": remove, "log_format": log_format,
        "after_remove": after_remove,
        "log_path": os.path.abspath(log_path) if log_path else os.path.join(root, request.container_id, "ctr.log"),
        "context": {"root": root, "log": ctx.log, "log_format": ctx.log_format, "debug": ctx.debug,
                    "systemd_cgroup": ctx.systemd_cgroup, "rootless": ctx.rootless,
                    "cgroup_manager": ctx.cgroup_manager, "cgroups_required": ctx.cgroups_required},
        # Absolute: the shim leaves the caller's directory (it must not keep it busy).
        "request": {"container_id": request.container_id, "bundle": os.path.abspath(request.bundle or "."),
                    "config_file": request.config_file and os.path.abspath(request.config_file),
                    "pid_file": request.pid_file,
                    "no_pivot": request.no_pivot, "no_new_keyring": request.no_new_keyring,
                    "annotations": request.annotations},
    }
    sync_r, sync_w = os.pipe()
    stderr_copy = os.dup(2)
    first = os.fork()
    if first == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                _exec_shim(spec, sync_w, stderr_copy)
        finally:
            os._exit(0)
    os.close(sync_w)
    os.close(stderr_copy)
    os.waitpid(first, 0)
    chunks = []
    while chunk := os.read(sync_r, 65536):
        chunks.append(chunk)
    os.close(sync_r)
    if not chunks:
        raise RootlessError(f"the shim of container {request.container_id} exited before creating it")
    message = json.loads(b"".join(chunks).decode())
    if message["type"] == "error":
        raise RootlessError(message["msg"])
    return message["pid"]


def _exec_shim(spec: dict, sync_w: int, stderr_copy: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    # Nothing the CLI inherited reaches the shim: a caller reading a pipe it gave us until its
    # end would wait for the container otherwise.
    from rootless.linux import syscalls as sc
    keep = (sync_w, stderr_copy)
    for fd in range(3, max(keep)):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    sc.close_range(max(keep) + 1)
    for fd in keep:
        os.set_inheritable(fd, True)
    spec["sync_fd"], spec["stderr_fd"] = sync_w, stderr_copy
    env = {key: value for key, value in os.environ.items() if key not in _NOT_FOR_THE_SHIM}
    os.execve(sys.executable, [sys.executable, "-I", "-S", "-c", _BOOT, json.dumps(spec)], env)
