import os

from rootless.create import stagefork


def run(ctx, parsed) -> int:
    from rootless.commands.create import check_preserved_fds, request_from
    check_preserved_fds(parsed)
    if parsed.options["shim"]:
        return _run_with_shim(ctx, request_from(parsed), parsed.options)
    # First, before the imports below: the stage loads the init's modules meanwhile.
    stage = stagefork.fork()
    try:
        return _run(ctx, parsed, stage)
    finally:
        stage.discard()


def _run(ctx, parsed, stage: stagefork.Stage) -> int:
    from rootless.create import launcher
    from rootless.process import supervise
    from rootless.commands.create import request_from
    request = request_from(parsed)
    detach = parsed.options["detach"]
    job = launcher.prepare(ctx, request)
    job.starts_at_once = True  # start follows create here
    local_console = None
    if not detach and not request.console_socket and job.terminal:
        # A foreground terminal: the init sends the pty master to us, and we proxy it.
        import socket
        local_console, remote = socket.socketpair()
        request.console_fd = remote.detach()
    try:
        cdir, record = launcher.create(ctx, request, subreaper=not detach, job=job, stage=stage)
    finally:
        if request.console_fd is not None:
            os.close(request.console_fd)
    master = None
    if local_console is not None:
        from rootless.terminal import console
        try:
            master = console.receive_pty(local_console)
        except BaseException:
            _delete(ctx, cdir, record)
            raise
        local_console.close()
        # Before start: the container's first look at its size must see the caller's.
        console.copy_window_size(0, master)
    _start(ctx, cdir, record)
    if detach:
        return 0
    supervise.forward_signals(record["pid"])
    if master is not None:
        from rootless.terminal import console
        console.proxy(master)
    status = supervise.wait_exit_code(record["pid"])
    if not parsed.options["keep"]:
        _delete(ctx, cdir, record)
    return status


def _run_with_shim(ctx, request, options) -> int:
    """The shim keeps the container; in the foreground we are one of its clients (attach), so
    killing us loses nothing: logs, attach and wait still have it all."""
    from rootless import container, state
    from rootless.commands.create import spawn_shim
    spawn_shim(ctx, request, options, remove=options["rm"])
    cdir = state.ContainerDir(ctx.root, request.container_id)
    with cdir:
        record = cdir.load()
    _start(ctx, cdir, record)
    if options["detach"]:
        return 0
    from rootless.commands import attach
    status = attach.attach(ctx.root, request.container_id)
    if not options["keep"] and not options["rm"]:
        with cdir:
            container.delete(cdir, cdir.load(), force=True, warn=ctx.warn)
    return status


def _start(ctx, cdir, record: dict) -> None:
    """start, and with NOTIFY_SOCKET back once READY=1 has been relayed (or the container has
    exited); on failure the container is deleted."""
    from rootless import container
    try:
        with cdir:
            listener = container.start(cdir, record, os.environ.get("NOTIFY_SOCKET"))
        if listener is not None:
            from rootless import notify
            notify.relay_until_ready(listener, record, os.environ["NOTIFY_SOCKET"])
    except BaseException:
        _delete(ctx, cdir, record)
        raise


def _delete(ctx, cdir, record: dict) -> None:
    from rootless import container
    with cdir:
        container.delete(cdir, record, force=True, warn=ctx.warn)
