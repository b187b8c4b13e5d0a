"""`pause`: freeze every process of the container (cgroup v2's cgroup.freeze); `state` then
says "paused". A container without a cgroup of its own cannot be paused: one line says why."""

from rootless import state
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        record = cdir.load()
        current = state.status(cdir, record)
        if current not in ("running", "created"):
            raise RootlessError(f"cannot pause container {cdir.id}: it is {current}, not running or created")
        from rootless.cgroups import manager
        manager.freeze(record, True)
    return 0
