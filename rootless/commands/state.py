from rootless import jsonlite as json

from rootless import state


def run(ctx, parsed) -> int:
    cdir = state.ContainerDir(ctx.root, parsed.args["id"])
    print(json.dumps(state.oci_state(cdir, cdir.load()), indent=2))
    return 0
