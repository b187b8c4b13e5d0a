"""The fork of the namespace stage (rootless.create.nsstage), made as early as `create` and
`run` can make it: before the CLI process loads the modules it plans with. The stage loads the
init's modules (about 8 ms on the critical path when they came after the fork) while the CLI
process loads its own and reads config.json, on another CPU when there is one, then waits for
its job (rootless.create.protocol). Without one (config.json refused, the CLI process gone) it
exits quietly, and the CLI process reaps it."""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless.create import protocol


class Stage:
    """The forked stage and the parent's end of the protocol with it, until create takes them."""

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
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def fork() -> Stage:
    parent, child = protocol.make_socket_pair()
    pid = os.fork()
    if pid == 0:
        # A forked copy of the CLI process: nothing may return into the CLI's code, not even
        # KeyboardInterrupt from a ^C to the process group.
        try:
            parent.close()
            from rootless.create import nsstage
            nsstage.serve(child)
        finally:
            os._exit(1)
    child.close()
    return Stage(pid, parent)
