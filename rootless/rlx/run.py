"""`rlx run [OPTIONS] SOURCE [COMMAND...]`: parse and hand over. The source is resolved by
rootless.rlx.source, the container made by rootless.rlx.prepare, run by rootless.rlx.launch.

In the foreground, what is printed is the container's own output only: notes and progress go
to stderr only on a terminal or with --debug, errors are one line.
"""

import os
import sys

from rootless.errors import RootlessError, UsageError
from rootless.rlx import context

EXAMPLES = """
Examples:

  rlx run --rm busybox echo hello          an image (pulled when missing)

  rlx run -it --rm ./image.tar sh          an image archive (docker-archive or oci-archive)

  rlx run --rm ./rootfs /bin/sh -c 'id'    a rootfs directory

  rlx run --rm host make test              your own system, read-only but for this directory

  rlx run -d --name web -p 8080:80 nginx   detached, published on 127.0.0.1:8080
"""


def register(app) -> None:
    """The typer command, built from runflags.FLAGS (help, completion, typer's own errors)."""
    import inspect
    import typer
    from rootless.rlx.runflags import FLAGS
    from rootless.rlx import complete
    types = {"flag": bool, "value": str, "multi": list[str], "int": int, "float": float}
    params = [inspect.Parameter("source", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str, default=typer.Argument(
                  ..., metavar="SOURCE", help="An image, an image archive, a rootfs directory or tarball, or `host`.",
                  autocompletion=complete.sources)),
              inspect.Parameter("command", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=list[str],
                                default=typer.Argument(None, metavar="[COMMAND...]", help="Instead of the image's Cmd."))]
    # rich reads "[...]" as markup; plain help (NO_COLOR, no terminal: main.py) prints it as it is.
    from typer.core import HAS_RICH
    for flags, dest, kind, text in FLAGS:
        default = [] if kind == "multi" else False if kind == "flag" else None
        shown = text.replace("[", "\\[") if HAS_RICH else text
        params.append(inspect.Parameter(dest, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=types[kind],
                                        default=typer.Option(default, *flags, help=shown)))

    def run(**values) -> None:
        """Run a command in a new container."""
        execute(dict(values, command=list(values["command"] or [])))

    run.__signature__ = inspect.Signature(params)
    run.__annotations__ = {p.name: p.annotation for p in params}
    app.command("run", context_settings={"allow_interspersed_args": False}, epilog=EXAMPLES)(run)


def execute(values: dict) -> None:
    """`rlx run` with the flags parsed (runflags.parse's dict, or typer's): never returns."""
    from rootless.rlx import launch, prepare, records, runconfig
    from rootless.rlx import source as sources
    opts = runconfig.RunOptions(
        command=values["command"], entrypoint=values["entrypoint"], env=values["env"], env_files=values["env_file"],
        workdir=values["workdir"], user=values["user"], volumes=values["volume"], tmpfs=values["tmpfs"],
        publish=values["publish"], network=values["network"], dns=values["dns"], hostname=values["hostname"],
        memory=values["memory"], cpus=values["cpus"], pids_limit=values["pids_limit"], cap_add=values["cap_add"],
        cap_drop=values["cap_drop"], read_only=values["read_only"], userns=values["userns"], init=values["init"],
        security_opt=values["security_opt"], tty=values["tty"], interactive=values["interactive"])
    chosen = values["network"] or runconfig.network_default(_which)
    if chosen not in runconfig.NETWORKS:
        raise UsageError(f"--network {chosen!r}: use one of {', '.join(runconfig.NETWORKS)}")
    if chosen == "slirp4netns":
        _check_socket_room(records.state_root())
    store = context.store()
    found = sources.resolve(store, values["source"], debug=context.debug, quiet=values["quiet"])
    record = prepare.make(store, found, opts, name=values["name"], auto_remove=values["rm"], network=chosen,
                          debug=context.debug)
    ctx = launch.context(context.debugging())
    if values["detach"]:
        try:
            cleanup = _cleanup_command(store.root, record["id"]) if values["rm"] else None
            _with_fallback(store, record, lambda: launch.detach(
                ctx, record["id"], record["bundle"], log_path=records.log_path(store.root, record["id"]),
                cleanup=cleanup))
        except BaseException as err:
            records.remove(store.root, record["id"])
            if isinstance(err, RootlessError):
                raise RootlessError(_in_rlx_terms(err.message)) from None
            raise
        print(record["id"])
        _exit(0)
    try:
        status = _with_fallback(store, record, lambda: launch.foreground(
            ctx, record["id"], record["bundle"], interactive=values["interactive"]))
    except BaseException as err:
        records.remove(store.root, record["id"])  # it never ran: nothing to keep, as with --rm
        if isinstance(err, RootlessError):
            raise RootlessError(_in_rlx_terms(err.message)) from None
        raise
    if values["rm"]:
        records.remove(store.root, record["id"])
    else:
        try:
            records.save(store.root, dict(record, exit_code=status, finished=records.now()))
        except OSError:
            pass  # removed meanwhile (rlx rm -f): nothing to record
    _exit(status)


def _with_fallback(store, record: dict, start):
    """start(), and once more over a copy of the layers if the kernel refused the overlay
    (an older kernel, a store on a filesystem overlayfs cannot stack in a user namespace)."""
    from rootless.rlx import prepare
    try:
        return start()
    except RootlessError as err:
        if not record.get("layers") or not prepare.overlay_refused(err.message):
            raise
        prepare.fall_back_to_copy(store, record, err.message, context.debug)
    return start()


def _cleanup_command(store_root: str, container_id: str) -> list[str]:
    import rootless
    parent = os.path.dirname(os.path.dirname(os.path.abspath(rootless.__file__)))
    boot = (f"import sys; sys.path[:0] = [{parent!r}]; from rootless.rlx import records; "
            f"records.remove(sys.argv[1], sys.argv[2])")
    return [sys.executable, "-I", "-c", boot, store_root, container_id]


def _check_socket_room(state_root: str) -> None:
    """slirp4netns's API socket lies in the container's state directory; a unix socket's path
    has 107 bytes at most, and slirp4netns says only "parent failed" beyond."""
    path = os.path.join(state_root, "0" * 64, "slirp4netns.sock")
    if len(path.encode()) > 107:
        raise RootlessError(f"--network slirp4netns: the state directory {state_root} is too long for its socket "
                            f"({len(path.encode())} of 107 bytes): use --network pasta, or a shorter XDG_RUNTIME_DIR")


def _in_rlx_terms(message: str) -> str:
    """The runtime speaks of the annotations rlx wrote; the user wrote flags."""
    return message.replace("check rootless.ports: is a host port in use?", "is that host port in use? choose another -p")


def _which(name: str) -> bool:
    """shutil.which's answer, without shutil's import."""
    return any(os.access(os.path.join(folder, name), os.X_OK)
               for folder in os.environ.get("PATH", os.defpath).split(os.pathsep) if folder)


def _exit(status: int) -> None:
    """The container's exit status is ours; no interpreter teardown (1 to 2 ms)."""
    from rootless.fastpath import exit_without_teardown
    exit_without_teardown(status)
