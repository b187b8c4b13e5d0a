"""`generate systemd ID|--bundle DIR`: a user unit that runs the bundle (rootless.units.systemd
says what the unit does and why). For an ID the bundle comes from the container's state; the
unit runs the bundle's config.json as it is now, so its stop signal is read there."""

import os
import sys

from rootless import container, state
from rootless.context import default_root
from rootless.errors import RootlessError, UsageError
from rootless.units import systemd

KINDS = ("systemd",)
UNIT_PREFIX = "container"  # podman's default: container-ID.service


def _runtime_argv() -> list[str]:
    """How the unit calls this runtime: the command that is running now, by its absolute path
    (a venv's bin/rootless stays the venv's), or this interpreter with -m."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "rootless-python":
        # the launcher the compiled front ran (packaging/install-deps): the command is the front
        front = os.path.join(os.path.dirname(argv0), "rootless")
        argv0 = front if os.path.isfile(front) else argv0
    if argv0 and os.path.basename(argv0) != "__main__.py" and os.path.isfile(argv0):
        return [os.path.abspath(argv0)]
    return [sys.executable, "-m", "rootless"]


def _bundle_of(ctx, container_id: str) -> str:
    cdir = state.ContainerDir(ctx.root, container_id)
    with cdir:
        return cdir.load()["bundle"]


def _config(bundle: str) -> dict:
    from rootless.oci.config import load_bundle
    return load_bundle(bundle).config


def _seconds(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit():
        raise UsageError(f"generate: invalid value {text!r} for --{flag}: a number of seconds")
    return int(text)


def generate(ctx, kind: str, container_id: str | None, options: dict) -> tuple[str, str]:
    """(unit file name, text)."""
    if kind not in KINDS:
        raise UsageError(f"generate: unknown kind {kind!r}: only `generate systemd` is supported")
    bundle_option = options["bundle"]
    if (container_id is None) == (bundle_option is None):
        raise UsageError("generate systemd: give a container ID or --bundle DIR (one of them)")
    if container_id is not None:
        state.validate_id(container_id)
        bundle = _bundle_of(ctx, container_id)
    else:
        bundle = os.path.abspath(bundle_option)
    name = options["name"] or container_id or os.path.basename(bundle.rstrip("/"))
    try:
        state.validate_id(name)
    except RootlessError:
        raise UsageError(f"generate systemd: {name!r} cannot be a container ID: give one with --name "
                         "(letters, digits, '_', '+', '-' and '.')") from None
    config = _config(bundle)
    if (config.get("process") or {}).get("terminal"):
        raise RootlessError(f"generate systemd: {bundle}/config.json has process.terminal true, but a service has "
                            "no terminal: set it to false")
    cgroups_path = (config.get("linux") or {}).get("cgroupsPath") or ""
    if cgroups_path.startswith("/"):
        ctx.warn(f"cgroupsPath {cgroups_path} is absolute: the container's cgroup will not be inside the "
                 "service's (remove it from config.json to keep the container in the unit)")
    restart = options["restart_policy"]
    if restart not in systemd.RESTART_POLICIES:
        raise UsageError(f"generate systemd: invalid --restart-policy {restart!r}: expected one of "
                         f"{', '.join(systemd.RESTART_POLICIES)}")
    sdnotify = options["sdnotify"]
    if sdnotify not in systemd.SDNOTIFY_MODES:
        raise UsageError(f"generate systemd: invalid --sdnotify {sdnotify!r}: expected one of "
                         f"{', '.join(systemd.SDNOTIFY_MODES)}")
    try:
        signal = systemd.stop_signal(config, container.signal_number)
    except RootlessError as err:
        raise RootlessError(f"{bundle}/config.json: annotation {systemd.STOP_SIGNAL_ANNOTATION}: {err}") from None
    globals_ = [] if ctx.root == default_root() else ["--root", os.path.abspath(ctx.root)]
    unit_name = f"{UNIT_PREFIX}-{name}.service"
    text = systemd.unit(name=unit_name, container_id=name, bundle=bundle, runtime=_runtime_argv(),
                        globals_=globals_, signal=signal,
                        stop_timeout=_seconds(options["stop_timeout"], "stop-timeout"),
                        start_timeout=_seconds(options["start_timeout"], "start-timeout"), restart=restart,
                        sdnotify=sdnotify)
    return unit_name, text


def run(ctx, parsed) -> int:
    unit_name, text = generate(ctx, parsed.args["kind"], parsed.args["id"], parsed.options)
    if not parsed.options["files"]:
        sys.stdout.write(text)
        return 0
    path = os.path.abspath(unit_name)
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as err:
        raise RootlessError(f"write {path}: {err.strerror}") from None
    print(path)
    return 0
