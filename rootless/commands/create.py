from rootless.create import stagefork


# Networking flags stand for the bundle annotations documented in README.md.
_NETWORK_FLAGS = (("network", "rootless.network"), ("dns", "rootless.dns"))


def request_from(parsed):
    """launcher.Request from the create and run flags."""
    from rootless.create import launcher
    o = parsed.options
    annotations = {key: o[dest] for dest, key in _NETWORK_FLAGS if o[dest] is not None}
    if o["publish"]:
        annotations["rootless.ports"] = ",".join(o["publish"])
    return launcher.Request(parsed.args["id"], o["bundle"], o["config"], o["pid_file"], o["console_socket"],
                            o["no_pivot"], o["no_new_keyring"], o["preserve_fds"], annotations=annotations)


def check_preserved_fds(parsed) -> None:
    """--preserve-fds N: fds 3..N+2 must be the caller's. Checked before the runtime opens an fd
    of its own, which would take the lowest free number."""
    from rootless.process import supervise
    supervise.check_preserved_fds(parsed.options["preserve_fds"])


def run(ctx, parsed) -> int:
    check_preserved_fds(parsed)
    if parsed.options["shim"]:
        spawn_shim(ctx, request_from(parsed), parsed.options, remove=False)
        return 0
    # First, before the imports request_from makes: the stage loads the init's modules meanwhile.
    stage = stagefork.fork()
    try:
        from rootless.create import launcher
        launcher.create(ctx, request_from(parsed), stage=stage)
    finally:
        stage.discard()
    return 0


def spawn_shim(ctx, request, options, remove: bool) -> int:
    """create through a shim (rootless.shim.server); returns the init's PID."""
    from rootless.shim import launch as shim_launch
    return shim_launch.spawn(ctx, request, log_path=options["shim_log"], log_format=options["shim_log_format"],
                             remove=remove)
