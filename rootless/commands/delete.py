from rootless import container, state
from rootless.errors import ContainerNotFound


def run(ctx, parsed) -> int:
    cdir = state.ContainerDir(ctx.root, parsed.args["id"])
    try:
        with cdir:
            container.delete(cdir, cdir.load(), parsed.options["force"], warn=ctx.warn)
    except ContainerNotFound:
        if not parsed.options["force"]:
            raise
        cdir.remove()  # runc: deleting an unknown id with --force succeeds (and clears debris)
    return 0
