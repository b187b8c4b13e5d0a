import os
import signal

from rootless import container, launcher
from rootless.commands.create import request_from

# Signals a foreground `run` passes on to the container, as runc's signal handler does.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGWINCH)


def run(ctx, parsed) -> int:
    request = request_from(parsed)
    detach = parsed.options["detach"]
    cdir, record = launcher.create(ctx, request, subreaper=not detach)
    try:
        with cdir:
            container.start(cdir, record)
    except BaseException:
        with cdir:
            container.delete(cdir, record, force=True)
        raise
    if detach:
        return 0
    status = _wait(record["pid"])
    if not parsed.options["keep"]:
        with cdir:
            container.delete(cdir, record, force=True)
    return status


def _wait(init_pid: int) -> int:
    """Wait for the init, forwarding signals; reap orphans we inherit as subreaper.
    The exit status is the init's, or 128+N when signal N killed it."""
    def forward(signum, _frame):
        try:
            os.kill(init_pid, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)
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
