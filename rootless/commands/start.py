import os

from rootless import container, state
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    notify_to = os.environ.get("NOTIFY_SOCKET")
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        record = cdir.load()
        listener = container.start(cdir, record, notify_to)
    if listener is not None:
        from rootless import notify
        if not notify.relay_until_ready(listener, record, notify_to):
            raise RootlessError(f"container {cdir.id} exited before it sent READY=1 to NOTIFY_SOCKET")
    return 0
