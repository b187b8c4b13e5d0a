"""`resume`: thaw a paused container (rootless/commands/pause.py)."""

from rootless import state
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        record = cdir.load()
        current = state.status(cdir, record)
        if current != "paused":
            raise RootlessError(f"cannot resume container {cdir.id}: it is {current}, not paused")
        from rootless.cgroups import manager
        manager.freeze(record, False)
    return 0
