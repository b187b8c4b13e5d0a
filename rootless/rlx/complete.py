"""Shell completion of rlx's arguments (typer's, for bash, zsh and fish): container names and
local image names. A completion runs on every Tab: it reads the store and the runtime state
only, and never fails (a broken store completes nothing rather than printing a traceback into
the user's command line)."""

import os


def _store_root(ctx) -> str:
    """--store as typed before the verb, else RLX_STORE, else the default store."""
    root = ctx.find_root().params.get("store") if ctx is not None else None
    if root:
        return root
    from rootless.images.store import default_root
    return os.environ.get("RLX_STORE") or default_root()


def _containers(ctx, incomplete: str, running_only: bool) -> list[str]:
    try:
        from rootless.rlx import control
        found = control.every(_store_root(ctx))
        names = [ctr.name for ctr in found if not running_only or ctr.status()["state"] == "running"]
    except Exception:  # noqa: BLE001 - see the module's docstring
        return []
    return [name for name in names if name.startswith(incomplete)]


def running_containers(ctx, incomplete: str) -> list[str]:
    """For verbs that need a running container: exec, stop, kill, attach, port."""
    return _containers(ctx, incomplete, running_only=True)


def containers(ctx, incomplete: str) -> list[str]:
    """For verbs that take any container: rm, logs, wait, inspect."""
    return _containers(ctx, incomplete, running_only=False)


def images(ctx, incomplete: str) -> list[str]:
    try:
        from rootless.images.store import Store
        names = [record["name"] for record in Store(_store_root(ctx)).records()]
    except Exception:  # noqa: BLE001 - see the module's docstring
        return []
    return [name for name in names if name.startswith(incomplete)]


def sources(ctx, incomplete: str) -> list[str]:
    """For `rlx run SOURCE`: local images, `host`, and paths once the word looks like one."""
    found = images(ctx, incomplete) + [name for name in ("host",) if name.startswith(incomplete)]
    if incomplete.startswith(("/", ".", "~")):
        import glob
        found += [path + "/" if os.path.isdir(path) else path
                  for path in sorted(glob.glob(os.path.expanduser(incomplete) + "*"))]
    return found


def containers_and_images(ctx, incomplete: str) -> list[str]:
    """For inspect, which takes either."""
    return containers(ctx, incomplete) + images(ctx, incomplete)
