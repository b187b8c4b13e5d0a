import os

from rootless import container, launcher, supervise
from rootless.commands.create import request_from


def run(ctx, parsed) -> int:
    request = request_from(parsed)
    detach = parsed.options["detach"]
    job = launcher.prepare(ctx, request)
    local_console = None
    if not detach and not request.console_socket and job.terminal:
        # A foreground terminal: the init sends the pty master to us, and we proxy it.
        import socket
        local_console, remote = socket.socketpair()
        request.console_fd = remote.detach()
    try:
        cdir, record = launcher.create(ctx, request, subreaper=not detach, job=job)
    finally:
        if request.console_fd is not None:
            os.close(request.console_fd)
    try:
        master = None
        if local_console is not None:
            from rootless import console
            master = console.receive_pty(local_console)
            local_console.close()
        with cdir:
            listener = container.start(cdir, record, os.environ.get("NOTIFY_SOCKET"))
        if listener is not None:
            # As `start`: back once READY=1 has been relayed (or the container has exited).
            from rootless import notify
            notify.relay_until_ready(listener, record, os.environ["NOTIFY_SOCKET"])
    except BaseException:
        with cdir:
            container.delete(cdir, record, force=True, warn=ctx.warn)
        raise
    if detach:
        return 0
    supervise.forward_signals(record["pid"])
    if master is not None:
        from rootless import console
        console.proxy(master)
    status = supervise.wait_exit_code(record["pid"])
    if not parsed.options["keep"]:
        with cdir:
            container.delete(cdir, record, force=True, warn=ctx.warn)
    return status
