"""Host paths the runtime reads, as overridable defaults, and where state lives."""

import os

PROC = "/proc"
SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
# Where the cgroup v2 hierarchy the runtime uses is mounted. ROOTLESS_CGROUP_MOUNT points it
# elsewhere: the tests of hybrid hosts use their cgroup2 tree at /sys/fs/cgroup/unified, which
# has no controllers worth having but freezes, kills and tracks processes for real.
CGROUP_MOUNT = os.environ.get("ROOTLESS_CGROUP_MOUNT") or "/sys/fs/cgroup"


def in_initial_userns(proc: str = PROC) -> bool:
    """True in the host's user namespace, whose uid_map is the identity over all IDs."""
    try:
        with open(f"{proc}/self/uid_map") as f:
            fields = f.read().split()
    except OSError:
        return True
    return fields == ["0", "0", "4294967295"]


def default_state_root(env, name: str = "rootless") -> str:
    """runc's rule: $XDG_RUNTIME_DIR/<name> for unprivileged callers and for root inside a user
    namespace (podman's rootless mode, which never passes --root); /run/<name> for real root.
    rlx's containers use the same rule with the name rlx."""
    xdg = env.get("XDG_RUNTIME_DIR")
    euid = os.geteuid()
    if xdg and (euid != 0 or not in_initial_userns()):
        return os.path.join(xdg, name)
    if euid == 0:
        return f"/run/{name}"
    candidate = f"/run/user/{euid}"
    if os.path.isdir(candidate) and os.stat(candidate).st_uid == euid:
        return os.path.join(candidate, name)
    return f"/tmp/{name}-{euid}"


def check_state_root(root: str) -> str:
    """The state root, if it can be one: a directory or nothing yet (create makes it). Checked
    once for every verb, so none of them meets a file or an impossible path halfway."""
    import stat
    from rootless.errors import UsageError
    shown = root if len(root) <= 200 else root[:200] + "..."
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise UsageError(f"state root {shown}: not a directory (give --root a directory)")
    except FileNotFoundError:
        pass
    except OSError as err:
        raise UsageError(f"state root {shown}: {err.strerror} (give --root a directory you can use)") from None
    return root
