import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless import container, launcher
from rootless.commands.create import request_from

# Signals a foreground `run` passes on to the container, as runc's signal handler does.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


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
            container.start(cdir, record)
    except BaseException:
        with cdir:
            container.delete(cdir, record, force=True, warn=ctx.warn)
        raise
    if detach:
        return 0
    _forward_signals(record["pid"])
    if master is not None:
        from rootless import console
        console.proxy(master)
    status = _wait(record["pid"])
    if not parsed.options["keep"]:
        with cdir:
            container.delete(cdir, record, force=True, warn=ctx.warn)
    return status


def _forward_signals(init_pid: int) -> None:
    def forward(signum, _frame):
        try:
            os.kill(init_pid, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)


def _wait(init_pid: int) -> int:
    """Wait for the init, reaping orphans we inherit as subreaper. The exit status is the
    init's, or 128+N when signal N killed it."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
        if pid == init_pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
