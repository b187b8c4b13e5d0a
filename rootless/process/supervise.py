"""A foreground process the CLI waits for (`run`, `exec`): signals passed on, exit status."""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless.linux import syscalls as sc

# Signals passed on to the process, as runc's signal handler does.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def adopt_orphans() -> None:
    """Become the child subreaper: a process forked by a stage that exits becomes our child, so
    that we can wait for it."""
    sc.set_child_subreaper()


def forward_signals(pid: int) -> None:
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)


def wait_exit_code(pid: int) -> int:
    """Wait for pid, reaping the orphans we inherit as subreaper meanwhile. Its exit status, or
    128+N when signal N killed it."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
