"""The namespace stage (rootless.create.nsstage), started before the CLI process loads the
modules it plans with: it loads the init's modules (about 8 ms on the critical path when they
came after a fork at the end of planning) while the CLI process loads its own and reads
config.json, on another CPU when there is one, then waits for its job
(rootless.create.protocol). Without one (config.json refused, the CLI process gone) it exits
quietly, and the CLI process reaps it.

The compiled front starts it as a Python of its own beside the CLI process
(rootless/front/front.c, start_namespace_stage, says why that beats a fork) and says so in the
environment, which from_environment reads; without the front, `create` and `run` fork it here
first thing."""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless.create import protocol


class Stage:
    """The stage, a child of the CLI process, and the CLI's end of the protocol with it, until
    create takes them."""

    def __init__(self, pid: int, channel: protocol.Channel):
        self.pid: int | None = pid
        self.channel = channel

    def take(self) -> tuple[int, protocol.Channel]:
        """For create, which from now on kills and reaps the stage itself if anything fails."""
        pid, self.pid = self.pid, None
        return pid, self.channel

    def discard(self) -> None:
        """Before create took it: end the stage, which has nothing to do, and leave no process."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        self.channel.close()
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


_started: Stage | None = None  # the front's, until create or run takes it


def from_environment(environ) -> None:
    """Take the front's variables out of the environment (nothing the runtime starts may see
    them). In the stage itself, serve (never returns); in the CLI process, keep the stage for
    fork(), or discard_unused() at exit."""
    global _started
    stage_fd = environ.pop("ROOTLESS_NAMESPACE_STAGE", None)
    started = environ.pop("ROOTLESS_STAGE", "").split()
    if stage_fd is not None:
        _serve(protocol.Channel(int(stage_fd), int(stage_fd)))
    if len(started) != 2 or not all(part.isdigit() for part in started):
        return
    pid, fd = map(int, started)
    try:
        # Ours to kill and reap: a child of this process that still runs (one that could not
        # start Python has exited; fork() then makes another).
        if os.waitpid(pid, os.WNOHANG)[0] != 0:
            os.close(fd)
            return
        os.set_inheritable(fd, False)
    except OSError:  # ChildProcessError included: not our child
        return
    _started = Stage(pid, protocol.Channel(fd, fd))


def discard_unused() -> None:
    if _started is not None:
        _started.discard()


def fork() -> Stage:
    """The front's stage if it started one, else a fork of this process."""
    global _started
    if _started is not None:
        stage, _started = _started, None
        return stage
    parent, child = protocol.make_socket_pair()
    pid = os.fork()
    if pid == 0:
        parent.close()
        _serve(child)
    child.close()
    return Stage(pid, parent)


def _serve(channel: protocol.Channel) -> None:
    # A copy of the CLI process, or a Python of its own that began as `rootless`: nothing may
    # return into the CLI's code, not even KeyboardInterrupt from a ^C to the process group.
    try:
        os.set_inheritable(channel.read_fd, False)
        from rootless.create import nsstage
        nsstage.serve(channel)
    finally:
        os._exit(1)
