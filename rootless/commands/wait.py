from rootless.shim import client as shim_client


def run(ctx, parsed) -> int:
    record = shim_client.ShimmedContainer(ctx.root, parsed.args["id"]).wait_exit()
    print(record["exit_code"])
    return 0
