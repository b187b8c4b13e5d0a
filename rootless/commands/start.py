from rootless import container, state


def run(ctx, parsed) -> int:
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        container.start(cdir, cdir.load())
    return 0
