import os

from rootless import container, state
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    notify_to = os.environ.get("NOTIFY_SOCKET")
    # The compiled front released the init and hands its answer on (rootless/front/front.c).
    released = os.environ.pop("ROOTLESS_FRONT_ANSWER", None)
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        record = cdir.load()
        listener = container.start(cdir, record, notify_to, None if released is None else _unhex(released))
    if listener is not None:
        from rootless import notify
        if not notify.relay_until_ready(listener, record, notify_to):
            raise RootlessError(f"container {cdir.id} exited before it sent READY=1 to NOTIFY_SOCKET")
    return 0


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RootlessError("ROOTLESS_FRONT_ANSWER is not hex: unset it (only rootless's front sets it)") from None
