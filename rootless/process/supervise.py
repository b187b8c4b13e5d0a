"""A process the CLI starts and, in the foreground, waits for (`run`, `exec`): its preserved fds
checked, signals passed on, exit status."""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless.linux import syscalls as sc
from rootless.errors import UsageError

# Signals passed on to the process, as runc's signal handler does.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def check_preserved_fds(count: int) -> None:
    """--preserve-fds COUNT passes fds 3..COUNT+2: each must be open, or the process would get
    another file at that number later."""
    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError:
            raise UsageError(f"--preserve-fds {count}: fd {fd} is not open") from None


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
