"""The namespace plan: which namespaces the container joins by path, which it creates, and
whether a new user namespace (and so an ID map) comes first. Pure: built from config.json and
facts about the caller, printed under --debug, unit-tested without privileges."""

from rootless.linux import syscalls as sc
from rootless.errors import ConfigError

FLAGS = {
    "pid": sc.CLONE_NEWPID, "network": sc.CLONE_NEWNET, "mount": sc.CLONE_NEWNS, "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS, "user": sc.CLONE_NEWUSER, "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
# /proc/PID/ns/<name> for each OCI type.
PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
              "cgroup": "cgroup", "time": "time"}


class NamespacePlan:
    def __init__(self, join: list[tuple[str, str]], new_user: bool, new_types: list[str], auto_user: bool):
        self.join = join                # (type, path), the user namespace first
        self.new_user = new_user        # unshare(CLONE_NEWUSER) before the others
        self.new_types = new_types      # created after the user namespace, inside it
        self.auto_user = auto_user      # the user namespace was added because the caller is unprivileged

    @property
    def unshare_flags(self) -> int:
        flags = 0
        for nstype in self.new_types:
            flags |= FLAGS[nstype]
        return flags

    def has_new(self, nstype: str) -> bool:
        return nstype in self.new_types or (nstype == "user" and self.new_user)

    def describe(self) -> str:
        parts = [f"join {t}={p}" for t, p in self.join]
        if self.new_user:
            parts.append("new user" + (" (added: unprivileged caller)" if self.auto_user else ""))
        parts += [f"new {t}" for t in self.new_types]
        return "namespaces: " + (", ".join(parts) or "none")


def plan_namespaces(linux: dict, *, privileged: bool, in_initial_userns: bool) -> NamespacePlan:
    """privileged: euid 0 with capabilities (host root, or root inside podman's user namespace)."""
    entries = {ns["type"]: ns.get("path") for ns in linux.get("namespaces", [])}
    has_maps = bool(linux.get("uidMappings") or linux.get("gidMappings"))
    join = [(t, p) for t, p in entries.items() if p]
    join.sort(key=lambda item: item[0] != "user")
    new_types = [t for t, p in entries.items() if not p and t != "user"]
    user_entry = "user" in entries
    user_path = entries.get("user")
    new_user = auto_user = False
    if user_path:
        pass
    elif not privileged:
        new_user = True
        auto_user = not user_entry
    elif user_entry and has_maps:
        new_user = True
    elif user_entry and in_initial_userns:
        raise ConfigError("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings when run as root")
    elif has_maps:
        raise ConfigError("config.json: linux.uidMappings need a user namespace in linux.namespaces")
    # Otherwise root inside an existing user namespace (podman) with no maps: that namespace serves.
    return NamespacePlan(join, new_user, new_types, auto_user)


# The order `exec` joins an existing container's namespaces in: the user namespace first (it
# owns the others, so joining them needs its capabilities), the mount namespace last.
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "pid", "time", "mount")


def namespaces_to_join(target: dict, own: dict) -> list[str]:
    """The types whose namespace differs between a container's process (target) and the caller
    (own), both {type: inode}. The same namespace is left alone: setns into the caller's own
    user namespace fails (podman runs the runtime in the user namespace of its containers)."""
    return [t for t in JOIN_ORDER if target.get(t) is not None and target.get(t) != own.get(t)]
