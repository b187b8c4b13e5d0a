"""The mount plan: config.json's mounts, /dev and the paths to mask, as a list of small
operations (bubblewrap's shape). Building it is pure; rootless.rootfs.apply executes it."""

import os

from rootless.linux import syscalls as sc
from rootless.errors import ConfigError

# option -> (flags to set, flags to clear)
FLAG_OPTIONS = {
    "async": (0, sc.MS_SYNCHRONOUS), "atime": (0, sc.MS_NOATIME), "bind": (sc.MS_BIND, 0), "defaults": (0, 0),
    "dev": (0, sc.MS_NODEV), "diratime": (0, sc.MS_NODIRATIME), "dirsync": (sc.MS_DIRSYNC, 0),
    "exec": (0, sc.MS_NOEXEC), "lazytime": (sc.MS_LAZYTIME, 0), "nolazytime": (0, sc.MS_LAZYTIME),
    "loud": (0, sc.MS_SILENT), "mand": (sc.MS_MANDLOCK, 0), "nomand": (0, sc.MS_MANDLOCK),
    "noatime": (sc.MS_NOATIME, 0), "nodev": (sc.MS_NODEV, 0), "nodiratime": (sc.MS_NODIRATIME, 0),
    "noexec": (sc.MS_NOEXEC, 0), "nosuid": (sc.MS_NOSUID, 0), "norelatime": (0, sc.MS_RELATIME),
    "nostrictatime": (0, sc.MS_STRICTATIME), "nosymfollow": (sc.MS_NOSYMFOLLOW, 0),
    "rbind": (sc.MS_BIND | sc.MS_REC, 0), "relatime": (sc.MS_RELATIME, 0), "remount": (sc.MS_REMOUNT, 0),
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY), "silent": (sc.MS_SILENT, 0),
    "strictatime": (sc.MS_STRICTATIME, 0), "suid": (0, sc.MS_NOSUID), "sync": (sc.MS_SYNCHRONOUS, 0),
    # runc's other flags (specconv's mountFlags)
    "acl": (sc.MS_POSIXACL, 0), "noacl": (0, sc.MS_POSIXACL), "iversion": (sc.MS_I_VERSION, 0),
    "noiversion": (0, sc.MS_I_VERSION), "symfollow": (0, sc.MS_NOSYMFOLLOW),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Recursive options (runc 1.1 and crun): applied to the mount and all below it with
# mount_setattr. option -> (attributes to set, attributes to clear)
RECURSIVE_OPTIONS = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0), "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0), "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, sc.MOUNT_ATTR__ATIME),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, sc.MOUNT_ATTR__ATIME),
    # Undoing noatime or strictatime leaves the kernel's default, relatime (MOUNT_ATTR_RELATIME is 0).
    "ratime": (0, sc.MOUNT_ATTR__ATIME), "rnorelatime": (0, sc.MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, sc.MOUNT_ATTR__ATIME),
}
# Flags a bind remount may change; the rest of `flags` only matter on the first mount.
_REMOUNT_MASK = (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME
                 | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW)
# Pseudo filesystems an unprivileged user may be refused; runc then binds the host's instance.
_HOST_FALLBACK = {"proc": "/proc", "sysfs": "/sys", "mqueue": "/dev/mqueue", "cgroup": "/sys/fs/cgroup",
                  "cgroup2": "/sys/fs/cgroup"}

DEFAULT_DEVICES = (
    # path, type, major, minor: the nodes every container gets (runc's list, in its order).
    ("/dev/null", "c", 1, 3), ("/dev/random", "c", 1, 8), ("/dev/full", "c", 1, 7),
    ("/dev/tty", "c", 5, 0), ("/dev/zero", "c", 1, 5), ("/dev/urandom", "c", 1, 9),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"), ("pts/ptmx", "/dev/ptmx"),
)


class Mount:
    """Mount `source` (type `fstype`) on `destination` inside the rootfs."""

    kind = "mount"
    copy_up = False     # tmpcopyup: fill the new tmpfs with what the destination held
    # Mounted writable, made read-only later: a tmpfs once filled and its mode set, /dev once
    # its nodes exist (rootless.rootfs.apply.finish). runc's order.
    writable_first = False
    idmap = None        # (uidMappings, gidMappings, recursive) for an idmapped bind mount
    idmap_userns = None  # or the user namespace whose maps it takes, by path (resolve_idmaps)
    tree_fd = None      # the idmapped tree, made by a privileged CLI process before the fork

    def __init__(self, destination: str, fstype: str | None, source: str | None, flags: int, data: str,
                 propagation: list[int], bind: bool, fallback_source: str | None,
                 recursive: tuple[int, int] = (0, 0)):
        self.destination, self.fstype, self.source = destination, fstype, source
        self.flags, self.data, self.propagation = flags, data, propagation
        self.recursive = recursive              # mount_setattr (set, clear) for the whole subtree
        self.bind = bind                        # a bind mount: applied as bind, then remounted with flags
        self.fallback_source = fallback_source  # host path to bind when the filesystem is refused

    @property
    def remount_flags(self) -> int:
        return self.flags & _REMOUNT_MASK

    def describe(self) -> str:
        what = f"bind {self.source}" if self.bind else f"{self.fstype} {self.source or ''}".rstrip()
        extra = f" data={self.data}" if self.data else ""
        extra += " tmpcopyup" if self.copy_up else ""
        extra += f" idmap={self.idmap_userns or self.idmap}" if self.idmap else ""
        return f"mount {what} -> {self.destination} flags={self.flags:#x}{extra}"


class Device:
    kind = "device"

    def __init__(self, path: str, dev_type: str, major: int, minor: int, mode: int, uid: int, gid: int):
        self.path, self.dev_type, self.major, self.minor = path, dev_type, major, minor
        self.mode, self.uid, self.gid = mode, uid, gid

    def describe(self) -> str:
        return f"device {self.dev_type} {self.major}:{self.minor} -> {self.path}"


class Symlink:
    kind = "symlink"

    def __init__(self, target: str, path: str):
        self.target, self.path = target, path

    def describe(self) -> str:
        return f"symlink {self.path} -> {self.target}"


def parse_options(options: list[str], destination: str) -> tuple[int, list[int], list[str], tuple[int, int]]:
    """Mount options -> (flags, propagation flags in order, data options, recursive attributes)."""
    flags, propagation, data = 0, [], []
    attr_set = attr_clear = 0
    for option in options:
        if option in RECURSIVE_OPTIONS:
            set_attrs, clear_attrs = RECURSIVE_OPTIONS[option]
            attr_set = (attr_set & ~clear_attrs) | set_attrs
            attr_clear = (attr_clear & ~set_attrs) | clear_attrs
        elif option in FLAG_OPTIONS:
            set_flags, clear_flags = FLAG_OPTIONS[option]
            flags = (flags | set_flags) & ~clear_flags
        elif option in PROPAGATION:
            propagation.append(PROPAGATION[option])
        elif option in ("tmpcopyup", "idmap", "ridmap"):
            raise ConfigError(f"config.json: mount {destination}: option {option!r} is not a mount(2) option "
                              "(plan_mount handles it)")
        else:
            data.append(option)
    return flags, propagation, data, (attr_set, attr_clear)


# The runtime's own options (rootless.rootfs.mountext), never passed to mount(2).
EXTENSION_OPTIONS = ("tmpcopyup", "idmap", "ridmap")


def plan_mount(entry: dict, bundle: str) -> Mount:
    destination = entry["destination"]
    fstype = entry.get("type") or None
    options = entry.get("options", [])
    flags, propagation, data, recursive = parse_options([o for o in options if o not in EXTENSION_OPTIONS],
                                                        destination)
    bind = bool(flags & sc.MS_BIND) or fstype == "bind"
    source = entry.get("source")
    if bind:
        if not source:
            raise ConfigError(f"config.json: bind mount {destination} needs a source")
        source = os.path.normpath(source if os.path.isabs(source) else os.path.join(bundle, source))
        flags |= sc.MS_BIND
    op = Mount(destination, None if bind else fstype, source, flags, ",".join(data), propagation, bind,
               None if bind else _HOST_FALLBACK.get(fstype or ""), recursive)
    if not bind and (fstype == "tmpfs" or os.path.normpath(destination) == "/dev"):
        op.writable_first = True
    if "tmpcopyup" in options:
        if bind or fstype != "tmpfs":
            raise ConfigError(f"config.json: mount {destination}: option tmpcopyup needs a tmpfs mount")
        op.copy_up = True
    uid_maps, gid_maps = entry.get("uidMappings"), entry.get("gidMappings")
    if "idmap" in options or "ridmap" in options or uid_maps or gid_maps:
        if not bind:
            raise ConfigError(f"config.json: mount {destination}: idmapped mounts need a bind mount")
        if bool(uid_maps) != bool(gid_maps):
            raise ConfigError(f"config.json: mount {destination}: an idmapped mount needs both uidMappings and "
                              "gidMappings on the mount, or neither (then the container's own are used)")
        # No mappings: the container's own user namespace (current runc); resolve_idmaps says which.
        op.idmap = (uid_maps or None, gid_maps or None, "ridmap" in options)
    return op


OWN_USERNS = "/proc/self/ns/user"  # as the init opens it: the user namespace it is in


def resolve_idmaps(plan: list, linux: dict, *, in_initial_userns: bool) -> None:
    """An idmap/ridmap mount without mappings of its own takes the container's (current runc):
    the user namespace it joins by path (op.idmap_userns), or the one its init is in (a new one,
    whose config maps real root's CLI process uses, or, with no user namespace in the config,
    the one the runtime itself runs in: podman's). Real root without a user namespace has none: refused as runc refuses."""
    userns = next((ns for ns in linux.get("namespaces", []) if ns.get("type") == "user"), None)
    for op in plan:
        if op.kind != "mount" or not op.idmap or op.idmap[0] is not None:
            continue
        if userns is not None and userns.get("path"):
            op.idmap_userns = userns["path"]
        elif userns is not None or not in_initial_userns:
            op.idmap_userns = OWN_USERNS
            if userns is not None and linux.get("uidMappings") and linux.get("gidMappings"):
                # For real root's CLI process, which makes the tree outside that namespace.
                op.idmap = (linux["uidMappings"], linux["gidMappings"], op.idmap[2])
        else:
            raise ConfigError(f"config.json: mount {op.destination}: an idmapped mount without uidMappings and "
                              "gidMappings of its own needs a user namespace with ID maps for the container")


def plan_devices(linux: dict, *, with_defaults: bool) -> list[Device]:
    """The default nodes, then the config's devices in their order. A config entry for a
    default's path replaces that default and goes with the config's entries, as runc orders
    them (libcontainer/specconv createDevices): the order of the binds shows in mountinfo,
    that of the nodes in their inode numbers."""
    devices: dict[str, Device] = {}
    for entry in linux.get("devices", []):
        path = entry["path"]
        if os.path.normpath(path) == "/dev/ptmx":  # as runc: always the link to pts/ptmx, never a node
            continue
        if entry["type"] not in ("c", "b", "u", "p"):
            raise ConfigError(f"config.json: device {path}: unknown type {entry['type']!r}")
        devices[path] = Device(path, entry["type"], entry.get("major", 0), entry.get("minor", 0),
                               entry.get("fileMode", 0o666), entry.get("uid", 0), entry.get("gid", 0))
    defaults = [Device(path, kind, major, minor, 0o666, 0, 0) for path, kind, major, minor in DEFAULT_DEVICES
                if with_defaults and path not in devices]
    return defaults + list(devices.values())


def plan_rootfs(config: dict, bundle: str) -> list:
    """Everything done inside the rootfs before pivot_root, in order."""
    plan: list = [plan_mount(entry, bundle) for entry in config.get("mounts", [])]
    label = config.get("linux", {}).get("mountLabel")
    for op in plan if label else ():
        # linux.mountLabel (SELinux, checked active by rootless.process.attrs): runc labels these.
        if not op.bind and op.fstype in ("tmpfs", "devpts", "mqueue"):
            op.data = ",".join(filter(None, [op.data, f'context="{label}"']))
    dev = [m for m in plan if os.path.normpath(m.destination) == "/dev"]
    if dev and dev[-1].bind:
        return plan  # the host's /dev (or another tree) as it is: runc makes no nodes in it either
    # runc's default nodes and links, and the config's devices, go into the /dev there is: a
    # fresh one, or the image's own when the config mounts none (as runc makes them there).
    plan += plan_devices(config.get("linux", {}), with_defaults=True)
    plan += [Symlink(target, path) for target, path in DEV_SYMLINKS]
    return plan


def describe(plan: list) -> str:
    return "\n".join(op.describe() for op in plan)
