import os

from rootless import container, state
from rootless.errors import ContainerNotFound


def run(ctx, parsed) -> int:
    cdir = state.ContainerDir(ctx.root, parsed.args["id"])
    try:
        with cdir:
            container.delete(cdir, cdir.load(), parsed.options["force"], warn=ctx.warn)
    except (ContainerNotFound, state.CorruptState):
        if not parsed.options["force"]:
            raise
        # runc: deleting an unknown id with --force succeeds (and clears debris). Without a
        # record, what still runs of the container is found by other means (rootless.remains).
        if os.path.lexists(cdir.path):
            from rootless import remains
            if os.path.isdir(cdir.path) and not os.path.islink(cdir.path):
                with cdir:
                    remains.remove(cdir, warn=ctx.warn)
            else:
                remains.remove(cdir, warn=ctx.warn)
    return 0
