from rootless import container, state


def run(ctx, parsed) -> int:
    signum = container.signal_number(parsed.args["signal"] or "TERM")
    with state.ContainerDir(ctx.root, parsed.args["id"]) as cdir:
        container.kill(cdir, cdir.load(), signum, parsed.options["all"])
    return 0
