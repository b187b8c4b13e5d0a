"""`rlx run [OPTIONS] SOURCE [COMMAND...]`: parse and hand over. The source is resolved by
rootless.rlx.source, the container made by rootless.rlx.prepare, run by rootless.rlx.launch.

In the foreground, what is printed is the container's own output only: notes and progress go
to stderr only on a terminal or with --debug, errors are one line.
"""

import os
import sys

import typer

from rootless.rlx import context

EXAMPLES = """
Examples:

  rlx run --rm busybox echo hello          an image (pulled when missing)

  rlx run -it --rm ./image.tar sh          an image archive (docker-archive or oci-archive)

  rlx run --rm ./rootfs /bin/sh -c 'id'    a rootfs directory

  rlx run --rm host make test              your own system, read-only but for this directory

  rlx run -d --name web -p 8080:80 nginx   detached, published on 127.0.0.1:8080
"""


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False}, epilog=EXAMPLES)(run)


def run(source: str = typer.Argument(..., metavar="SOURCE",
                                     help="An image, an image archive, a rootfs directory or tarball, or `host`."),
        command: list[str] = typer.Argument(None, metavar="[COMMAND...]", help="Instead of the image's Cmd."),
        name: str = typer.Option(None, "--name", help="The container's name (default: a random one)."),
        detach: bool = typer.Option(False, "--detach", "-d", help="Run in the background; print the ID."),
        rm: bool = typer.Option(False, "--rm", help="Remove the container when it exits."),
        interactive: bool = typer.Option(False, "--interactive", "-i", help="Keep stdin open."),
        tty: bool = typer.Option(False, "--tty", "-t", help="Give the container a terminal."),
        env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE, or KEY for the host's value."),
        env_file: list[str] = typer.Option([], "--env-file", help="A file of KEY=VALUE lines."),
        workdir: str = typer.Option(None, "--workdir", "-w", help="The working directory inside."),
        user: str = typer.Option(None, "--user", "-u", help="USER[:GROUP], names or IDs of the image."),
        volume: list[str] = typer.Option([], "--volume", "-v", help="SRC:DST[:ro]; SRC a host path or a volume name."),
        tmpfs: list[str] = typer.Option([], "--tmpfs", help="DST[:OPTIONS]: a tmpfs at DST."),
        publish: list[str] = typer.Option([], "--publish", "-p", help="[HOSTIP:]HOSTPORT:PORT[/tcp|udp]."),
        network: str = typer.Option(None, "--network", "--net", help="none, pasta, slirp4netns or host (default: pasta, "
                                    "else slirp4netns)."),
        dns: list[str] = typer.Option([], "--dns", help="A name server for /etc/resolv.conf."),
        hostname: str = typer.Option(None, "--hostname", "-h", help="Default: the short ID."),
        memory: str = typer.Option(None, "--memory", "-m", help="A memory limit: 512m, 1g."),
        cpus: float = typer.Option(None, "--cpus", help="CPUs the container may use: 1.5."),
        pids_limit: int = typer.Option(None, "--pids-limit", help="At most this many processes."),
        cap_add: list[str] = typer.Option([], "--cap-add", help="A capability to add (NET_RAW, ALL)."),
        cap_drop: list[str] = typer.Option([], "--cap-drop", help="A capability to drop (CHOWN, ALL)."),
        read_only: bool = typer.Option(False, "--read-only", help="A read-only root (tmpfs on /tmp, /var/tmp, /run)."),
        userns: str = typer.Option(None, "--userns", help="keep-id: your own UID inside."),
        init: bool = typer.Option(False, "--init", help="A small init as PID 1 (catatonit or tini)."),
        entrypoint: str = typer.Option(None, "--entrypoint", help="Instead of the image's Entrypoint."),
        security_opt: list[str] = typer.Option([], "--security-opt", help="seccomp=unconfined or seccomp=FILE."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No pull progress, even on a terminal.")) -> None:
    """Run a command in a new container."""
    from rootless.rlx import launch, prepare, records, runconfig
    from rootless.rlx import source as sources
    if detach and rm and interactive:
        pass  # podman allows it: the input is simply never read
    opts = runconfig.RunOptions(
        command=list(command or []), entrypoint=entrypoint, env=env, env_files=env_file, workdir=workdir,
        user=user, volumes=volume, tmpfs=tmpfs, publish=publish, network=network, dns=dns, hostname=hostname,
        memory=memory, cpus=cpus, pids_limit=pids_limit, cap_add=cap_add, cap_drop=cap_drop, read_only=read_only,
        userns=userns, init=init, security_opt=security_opt, tty=tty, interactive=interactive)
    chosen = network or runconfig.network_default(__import__("shutil").which)
    if chosen not in runconfig.NETWORKS:
        raise context.usage(f"--network {chosen!r}: use one of {', '.join(runconfig.NETWORKS)}")
    store = context.store()
    found = sources.resolve(store, source, debug=context.debug, quiet=quiet)
    record = prepare.make(store, found, opts, name=name, auto_remove=rm, network=chosen, debug=context.debug)
    ctx = launch.context(context.debugging())
    if detach:
        try:
            cleanup = _cleanup_command(store.root, record["id"]) if rm else None
            launch.detach(ctx, record["id"], record["bundle"], log_path=records.log_path(store.root, record["id"]),
                          cleanup=cleanup)
        except BaseException:
            records.remove(store.root, record["id"])
            raise
        print(record["id"])
        return
    try:
        status = launch.foreground(ctx, record["id"], record["bundle"], interactive=interactive)
    finally:
        if rm:
            records.remove(store.root, record["id"])
    _exit(status)


def _cleanup_command(store_root: str, container_id: str) -> list[str]:
    import rootless
    parent = os.path.dirname(os.path.dirname(os.path.abspath(rootless.__file__)))
    boot = (f"import sys; sys.path[:0] = [{parent!r}]; from rootless.rlx import records; "
            f"records.remove(sys.argv[1], sys.argv[2])")
    return [sys.executable, "-I", "-c", boot, store_root, container_id]


def _exit(status: int) -> None:
    """The container's exit status is ours; no interpreter teardown (1 to 2 ms)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
