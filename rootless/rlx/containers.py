"""The container verbs: ps, logs, stop, kill, rm, exec, inspect (of a container or an image),
port, wait, attach. Parsing and printing only: the work is in rootless/rlx/control.py and the
runtime's own modules (the shim's log and socket, exec in-process)."""

import sys
import time

import typer

from rootless.errors import RootlessError
from rootless.rlx import complete, context, control, listing
from rootless.rlx.listing import examples

RUNNING = typer.Argument(..., metavar="CONTAINER", autocompletion=complete.running_containers,
                         help="A name, an ID or a unique prefix of one.")
ANY = typer.Argument(..., metavar="CONTAINER", autocompletion=complete.containers,
                     help="A name, an ID or a unique prefix of one.")
SEVERAL_RUNNING = typer.Argument(..., metavar="CONTAINER...", autocompletion=complete.running_containers)
SEVERAL = typer.Argument(..., metavar="CONTAINER...", autocompletion=complete.containers)
# exec's options end at the container: what follows is the command and its own options.
COMMAND_AFTER = {"allow_interspersed_args": False}


def register(app: typer.Typer) -> None:
    app.command("ps", epilog=examples("rlx ps", "rlx ps -a --format json"))(ps)
    app.command("logs", epilog=examples("rlx logs web", "rlx logs -f --since 10m web"))(logs)
    app.command("stop", epilog=examples("rlx stop web", "rlx stop -t 2 web db"))(stop)
    app.command("kill", epilog=examples("rlx kill web", "rlx kill -s HUP web"))(kill)
    app.command("rm", epilog=examples("rlx rm web", "rlx rm -f web"))(rm)
    app.command("exec", context_settings=COMMAND_AFTER,
                epilog=examples("rlx exec web cat /etc/hostname", "rlx exec -it web sh",
                                 "rlx exec -e A=1 -u 1000 -w /tmp web env"))(exec_)
    app.command("inspect", epilog=examples("rlx inspect web", "rlx inspect docker.io/library/busybox:latest",
                                            "rlx inspect --type image busybox"))(inspect)
    app.command("port", epilog=examples("rlx port web", "rlx port web 80/tcp"))(port)
    app.command("wait", epilog=examples("rlx wait web"))(wait)
    app.command("attach", epilog=examples("rlx attach web", "rlx attach --no-stdin web"))(attach)


def _each(refs: list[str], action) -> None:
    """Run action(ctr, ref) for each container named, as podman does: every one is tried, each
    failure is its own line, and the status is 1 if any failed."""
    store_root = context.store().root
    failed = False
    for ref in refs:
        try:
            action(control.find(store_root, ref), ref)
        except RootlessError as err:
            print(f"rlx: {err}", file=sys.stderr)
            failed = True
    if failed:
        raise typer.Exit(1)


def ps(all_: bool = typer.Option(False, "--all", "-a", help="Show stopped and created containers too."),
       format: str = typer.Option("table", "--format", help="table or json (podman's keys, for scripts)."),
       quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the IDs.")) -> None:
    """List containers: running ones, or all with -a."""
    listing.check_format(format)
    now = time.time()
    rows = [control.ps_row(ctr, now) for ctr in control.every(context.store().root)]
    rows = [row for row in rows if all_ or row["State"] in ("running", "paused")]
    if format == "json":
        print(listing.to_json(rows))
        return
    if quiet:
        for row in rows:
            print(listing.short_id(row["Id"]))
        return
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    cells = [[listing.short_id(row["Id"]), row["Image"], listing.command_text(row["Command"]),
              f"{listing.human_duration(now - row['Created'])} ago", row["Status"],
              listing.ports_text(row["Ports"]), row["Names"][0]] for row in rows]
    print(listing.table(headers, cells, [listing.STYLE.get(row["State"]) for row in rows],
                        colour=listing.colour_allowed(sys.stdout)))


def logs(name: str = ANY,
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output until the container exits."),
         since: str = typer.Option(None, "--since", help="Only output since then: 10m, 1h30m, or an RFC 3339 time.")) -> None:
    """Print a container's output, the lines as it wrote them (stdout to stdout, stderr to stderr)."""
    ctr = control.find(context.store().root, name)
    from rootless.commands import logs as runtime_logs
    path, log_format = control.log_of(ctr, context.store().root)
    runtime_logs.copy_log(path, log_format, follow, lambda: control.finished(ctr),
                          since=control.since_time(since, time.time()) if since else "")


def stop(names: list[str] = SEVERAL_RUNNING,
         timeout: int = typer.Option(control.STOP_TIMEOUT, "--time", "-t", metavar="SECONDS",
                                     help="How long the stop signal has before SIGKILL.")) -> None:
    """Stop containers: the image's stop signal (SIGTERM if none), then SIGKILL after -t seconds."""
    def action(ctr, ref):
        control.stop(ctr, timeout)
        print(ref)
    _each(names, action)


def kill(names: list[str] = SEVERAL_RUNNING,
         signal: str = typer.Option("KILL", "--signal", "-s", help="A name (TERM, SIGHUP) or a number.")) -> None:
    """Send a signal to containers' main process (default SIGKILL)."""
    signum = control.signal_of(signal)

    def action(ctr, ref):
        control.kill(ctr, signum)
        print(ref)
    _each(names, action)


def rm(names: list[str] = SEVERAL,
       force: bool = typer.Option(False, "--force", "-f", help="Kill a running container first.")) -> None:
    """Remove containers: their processes (with -f), state, root filesystem, log and record."""
    store_root = context.store().root

    def action(ctr, ref):
        control.remove(ctr, store_root, force, debug=context.debugging())
        print(ref)
    _each(names, action)


def exec_(name: str = RUNNING,
          command: list[str] = typer.Argument(..., metavar="COMMAND [ARG...]", help="What to run in the container."),
          interactive: bool = typer.Option(False, "--interactive", "-i", help="Keep stdin open to the process."),
          tty: bool = typer.Option(False, "--tty", "-t", help="Give the process a terminal."),
          env: list[str] = typer.Option(None, "--env", "-e", metavar="NAME=VALUE", help="Set a variable (repeatable)."),
          user: str = typer.Option(None, "--user", "-u", metavar="UID[:GID]", help="Run as this user."),
          workdir: str = typer.Option(None, "--workdir", "-w", metavar="DIR", help="Run in this directory.")) -> None:
    """Run a command in a running container; the exit status is the command's."""
    ctr = control.find(context.store().root, name)
    raise typer.Exit(control.execute(ctr, command, interactive=interactive, tty=tty, env=env or [], user=user,
                                     cwd=workdir, debug=context.debugging()))


def inspect(names: list[str] = typer.Argument(..., metavar="NAME...", autocompletion=complete.containers_and_images),
            type_: str = typer.Option("all", "--type", help="container, image, or all (containers first)."),
            ) -> None:
    """Show containers or images as a JSON array (podman's main keys for containers; an image's
    record, manifest and config)."""
    if type_ not in ("all", "container", "image"):
        raise RootlessError(f"--type {type_!r}: use container, image or all")
    store = context.store()
    from rootless.rlx import images
    found, missing = [], []
    for ref in names:
        try:
            if type_ == "image":
                raise control.records.ContainerError(ref)
            found.append(control.inspect(control.find(store.root, ref), store.root))
        except control.records.ContainerError:
            if type_ == "container":
                missing.append(f"no container {ref}")
                continue
            try:
                found.append(images.image_view(store, ref))
            except RootlessError:
                missing.append(f"no container or image {ref}" if type_ == "all" else f"no image {ref}")
    if found:
        print(listing.to_json(found))
    for line in missing:
        print(f"rlx: inspect: {line} (rlx ps -a and rlx images list them)", file=sys.stderr)
    if missing:
        raise typer.Exit(1)


def port(name: str = RUNNING,
         private: str = typer.Argument(None, metavar="[PORT[/PROTO]]", help="Only this container port.")) -> None:
    """List a container's published ports: CONTAINER_PORT/PROTO -> HOST_IP:HOST_PORT."""
    ctr = control.find(context.store().root, name)
    for line in control.port_lines(ctr, private):
        print(line)


def wait(names: list[str] = SEVERAL) -> None:
    """Wait for containers to exit and print their exit codes."""
    _each(names, lambda ctr, ref: print(control.wait(ctr)))


def attach(name: str = RUNNING,
           no_stdin: bool = typer.Option(False, "--no-stdin", help="Do not send our input to the container.")) -> None:
    """Attach to a running container's output (and input); the exit status is the container's."""
    ctr = control.find(context.store().root, name)
    ctr.running_state("attach")
    from rootless.commands import attach as runtime_attach
    raise typer.Exit(runtime_attach.attach(ctr.cdir.root, ctr.id, with_stdin=not no_stdin))
