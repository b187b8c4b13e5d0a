import sys

from rootless import state


def run(ctx, parsed) -> int:
    cdir = state.ContainerDir(ctx.root, parsed.args["id"])
    record = cdir.load()
    sys.stdout.write(state.state_text(record, state.status(cdir, record)))
    return 0
