"""A prepared bundle run as a runtime container, in this process: the runtime's own create and
start (rootless.create.launcher, rootless.container), no second interpreter. In the foreground
we are the container's parent (subreaper), proxy its terminal and return its exit status; with
`-d` the runtime's shim (rootless.shim) holds it, its log in the container's rlx directory.

Who removes what: the foreground run deletes the runtime container when it exits, and with
--rm the rlx directory too; a detached --rm container is deleted by its shim, which then runs
the command rootless.rlx.run builds for it (`_cleanup_command`) to remove the rlx directory.
"""

import os
import sys

from rootless import container, state
from rootless.context import Context
from rootless.create import launcher


class RlxContext(Context):
    """The runtime's context with rlx's voice: `rlx: warning: ...` on stderr, debug lines
    only with --debug."""

    def warn(self, message: str) -> None:
        print(f"rlx: warning: {' '.join(message.splitlines())}", file=sys.stderr, flush=True)

    def trace(self, message: str) -> None:
        if self.debug:
            for line in filter(str.strip, message.splitlines()):
                print(f"rlx: {line}", file=sys.stderr, flush=True)


def context(debug: bool) -> RlxContext:
    from rootless.rlx import records
    return RlxContext(root=records.state_root(), debug=debug)


def detach(ctx: RlxContext, container_id: str, bundle: str, *, log_path: str, cleanup: list[str] | None) -> int:
    """Create through a shim and start; returns once the container runs."""
    from rootless.shim import launch as shim_launch
    request = launcher.Request(container_id, bundle)
    shim_launch.spawn(ctx, request, log_path=log_path, log_format="k8s-file", remove=cleanup is not None,
                      after_remove=cleanup)
    cdir = state.ContainerDir(ctx.root, container_id)
    with cdir:
        record = cdir.load()
    _start(ctx, cdir, record)
    return record["pid"]


def stdin_from_devnull() -> None:
    """podman gives a process without -i no input: /dev/null, never our terminal."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def foreground(ctx: RlxContext, container_id: str, bundle: str, *, interactive: bool) -> int:
    """Create, start, wait; the runtime container is deleted when it exits. Returns the exit
    status (128+N for signal N)."""
    request = launcher.Request(container_id, bundle)
    job = launcher.prepare(ctx, request)
    job.starts_at_once = True  # start follows create here
    if not interactive:
        stdin_from_devnull()
    local_console = None
    if job.terminal:
        import socket
        local_console, remote = socket.socketpair()
        request.console_fd = remote.detach()
    try:
        cdir, record = launcher.create(ctx, request, subreaper=True, job=job)
    finally:
        if request.console_fd is not None:
            os.close(request.console_fd)
    master = None
    try:
        if local_console is not None:
            from rootless.terminal import console
            master = console.receive_pty(local_console)
            local_console.close()
            console.copy_window_size(0, master)
        _start(ctx, cdir, record)
        from rootless.process import supervise
        supervise.forward_signals(record["pid"])
        if master is not None:
            from rootless.terminal import console
            console.proxy(master)
        return supervise.wait_exit_code(record["pid"])
    finally:
        delete(ctx, container_id)


def _start(ctx, cdir: state.ContainerDir, record: dict) -> None:
    try:
        with cdir:
            container.start(cdir, record)
    except BaseException:
        delete(ctx, cdir.id)
        raise


def delete(ctx, container_id: str) -> None:
    """The runtime container, forced (kill first). Already gone is fine; a corrupt state.json
    is cleared as `delete -f` does (rootless.remains)."""
    from rootless.errors import ContainerNotFound
    cdir = state.ContainerDir(ctx.root, container_id)
    try:
        with cdir:
            try:
                container.delete(cdir, cdir.load(), force=True, warn=ctx.warn)
            except state.CorruptState:
                from rootless import remains
                remains.remove(cdir)
    except ContainerNotFound:
        pass
