"""Executing the mount plan inside the container's mount namespace, then pivot_root.

Every destination is resolved inside the rootfs by the kernel (openat2 with RESOLVE_IN_ROOT),
and the mount is made on /proc/self/fd/N of the resolved target, so a symlink in the rootfs
cannot send a mount outside it.
"""

import errno
import os
import stat

from rootless.oci import mounts
from rootless.rootfs import mountext
from rootless.linux import syscalls as sc
from rootless.errors import RootlessError, SyscallError

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
# statvfs bits of flags a mount namespace's owner cannot clear on a bind mount it did not make.
_LOCKED = ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC),
           (os.ST_RDONLY, sc.MS_RDONLY))


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


class Rootfs:
    """The container's root directory on the host, open as an O_PATH fd."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.real = os.readlink(_fd_path(self.fd))

    def inside(self, fd: int) -> str | None:
        """Where the file open at fd lies in the rootfs (symlinks resolved), None if outside."""
        path = os.readlink(_fd_path(fd))
        if path == self.real:
            return "/"
        return path[len(self.real):] if path.startswith(self.real.rstrip("/") + "/") else None

    def close(self) -> None:
        os.close(self.fd)

    def resolve(self, path: str, flags: int = os.O_PATH) -> int:
        return sc.openat2(self.fd, path, flags, _RESOLVE, shown=self.path + path)

    def make_dirs(self, path: str, _depth: int = 0) -> int:
        """O_PATH fd of directory `path` inside the rootfs, creating missing components. A
        dangling symlink on the way is followed inside the rootfs, as the kernel resolves it
        there, and its target is created (runc's securejoin does the same)."""
        if _depth > 40:  # the kernel's MAXSYMLINKS
            raise SyscallError("mkdir", errno.ELOOP, self.path + path)
        current = self.resolve("/", os.O_PATH | os.O_DIRECTORY)
        walked = ""
        try:
            for part in (p for p in path.split("/") if p):
                parent, walked = walked, walked + "/" + part
                try:
                    following = self.resolve(walked, os.O_PATH | os.O_DIRECTORY)
                except SyscallError as err:
                    if err.errno != errno.ENOENT:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=current)
                    except FileExistsError:
                        self._make_link_target(current, part, parent, _depth)
                    following = self.resolve(walked, os.O_PATH | os.O_DIRECTORY)
                os.close(current)
                current = following
        except BaseException:
            os.close(current)
            raise
        return current

    def _make_link_target(self, parent_fd: int, name: str, parent: str, depth: int) -> None:
        try:
            target = os.readlink(name, dir_fd=parent_fd)
        except OSError:
            return  # made meanwhile by someone else: resolving again will tell
        os.close(self.make_dirs(target if target.startswith("/") else f"{parent}/{target}", depth + 1))

    def make_target(self, path: str, directory: bool, _depth: int = 0) -> int:
        """O_PATH fd of a mount target: a directory, or a file for mounts of files. A trailing
        dangling symlink is followed inside the rootfs and its target made, as runc does."""
        if directory:
            return self.make_dirs(path)
        if _depth > 40:
            raise SyscallError("open", errno.ELOOP, self.path + path)
        try:
            return self.resolve(path)
        except SyscallError as err:
            if err.errno != errno.ENOENT:
                raise
        parent = self.make_dirs(os.path.dirname(path))
        name = os.path.basename(path)
        try:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent))
        except FileExistsError:
            pass
        except OSError as err:
            if err.errno != errno.ELOOP:  # O_NOFOLLOW met the dangling symlink
                raise
            target = os.readlink(name, dir_fd=parent)
            os.close(parent)
            parent = None
            inside = target if target.startswith("/") else f"{os.path.dirname(path)}/{target}"
            os.close(self.make_target(inside, False, _depth + 1))
        finally:
            if parent is not None:
                os.close(parent)
        return self.resolve(path)

    def existing_mode(self, path: str) -> int | None:
        """Permission bits of the directory at `path`, None if there is none yet."""
        try:
            fd = self.resolve(path, os.O_PATH | os.O_DIRECTORY)
        except SyscallError as err:
            if err.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        try:
            return stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)

    def require_plain_directory(self, path: str, fstype: str) -> None:
        """procfs and sysfs only on a real directory (or on nothing yet): a symlink there would
        redirect them, and every later write meant for /proc, to a place the image chose (the
        CVE-2019-16884 / CVE-2019-19921 class). runc refuses it in the same words."""
        try:
            parent = self.resolve(os.path.dirname(path) or "/", os.O_PATH | os.O_DIRECTORY)
        except SyscallError as err:
            if err.errno in (errno.ENOENT, errno.ENOTDIR):
                return
            raise
        try:
            mode = os.lstat(os.path.basename(path), dir_fd=parent).st_mode
        except FileNotFoundError:
            return
        finally:
            os.close(parent)
        if not stat.S_ISDIR(mode):
            raise RootlessError(f'mount {path}: filesystem "{fstype}" must be mounted on ordinary directory '
                                f"(it is a {'symlink' if stat.S_ISLNK(mode) else 'file'} in the rootfs)")


# Files under /proc a mount may cover: those lxcfs emulates (runc's list).
_PROC_FILES_EMULATED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                        "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                        "/proc/sys/kernel/ns_last_pid")


def _check_proc_destination(root: Rootfs, fd: int, op: mounts.Mount) -> None:
    """runc's checkProcMount: nothing but procfs on /proc, and nothing inside it but the files
    lxcfs emulates. A mount over /proc/self/attr or /proc/sys would hand the container's own
    files to writes meant for the kernel (the CVE-2019-16884 class)."""
    inside = root.inside(fd)
    if inside is None or not (inside == "/proc" or inside.startswith("/proc/")):
        return
    shown = root.path + inside
    if inside == "/proc":
        if op.fstype == "proc" and not op.bind or op.bind and _on_procfs(op.source):
            return
        raise RootlessError(f'mount {op.destination}: "{shown}" cannot be mounted because it is not of type proc')
    if inside not in _PROC_FILES_EMULATED:
        raise RootlessError(f'mount {op.destination}: "{shown}" cannot be mounted because it is inside /proc')


def _on_procfs(path: str) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return sc.fstatfs_type(fd, path) == sc.PROC_SUPER_MAGIC
    finally:
        os.close(fd)


def locked_flags(path: str) -> int:
    """Flags the current mount at `path` carries that a bind remount must keep (in a user
    namespace the kernel refuses to clear them: EPERM)."""
    current = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED if current & st)


def remount_bind(path: str, flags: int, shown: str) -> None:
    flags |= locked_flags(path)
    sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | flags, None, shown_target=shown)


def prepare(rootfs: str, propagation: str | None, overlay: str | None = None) -> None:
    """Set the root's propagation as runc's prepareRoot does, then make the rootfs a mount point
    of its own (pivot_root needs one): a bind of itself, or the overlay the rootless.overlay
    annotation describes (mounted here, by root of the container's user namespace, so no real
    root is needed)."""
    flags = mounts.PROPAGATION.get(propagation or "rslave")
    if flags is None:
        raise RootlessError(f"config.json: linux.rootfsPropagation {propagation!r} is not a propagation type")
    # "shared" keeps the copies of the caller's shared mounts in their peer groups, so a bind
    # volume marked rshared propagates both ways (podman sends "shared" for one), as with runc.
    sc.mount(None, "/", None, flags)
    # pivot_root refuses a new root whose parent mount is shared (runc's rootfsParentMountPrivate).
    parent = _mount_point_of(rootfs)
    if parent is not None and parent[1]:
        sc.mount(None, parent[0], None, sc.MS_PRIVATE)
    if overlay:
        try:
            sc.mount("overlay", rootfs, "overlay", 0, overlay)
        except SyscallError as err:
            raise RootlessError(f"annotation rootless.overlay: mount overlay on {rootfs}: {os.strerror(err.errno)} "
                                "(Linux 5.11+ mounts overlays in a user namespace; the layers and upper "
                                "directory must be on a filesystem with user xattrs)") from None
        return
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)


def _mount_point_of(path: str, mountinfo: str = "/proc/self/mountinfo") -> tuple[str, bool] | None:
    """The mount point holding `path` (the deepest one above it) and whether it is shared."""
    best = None
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            if path == point or path.startswith(point.rstrip("/") + "/"):
                if best is None or len(point) >= len(best[0]):
                    optional = fields[6:fields.index("-")]
                    best = (point, any(tag.startswith("shared:") for tag in optional))
    return best


def _mount_filesystem(op: mounts.Mount, target: str, shown: str, flags: int, data: str) -> bool:
    """Mount op's filesystem; True if the host's instance was bound instead."""
    try:
        sc.mount(op.source or op.fstype, target, op.fstype, flags, data or None, shown_target=shown)
        return False
    except SyscallError as err:
        if op.fstype == "devpts" and err.errno == errno.EINVAL and "gid=" in data:
            # gid=5 (tty) is not mapped in a single-ID user namespace: runc drops it too.
            data = ",".join(o for o in data.split(",") if not o.startswith("gid="))
            sc.mount(op.source or op.fstype, target, op.fstype, flags, data or None, shown_target=shown)
            return False
        if not (op.fallback_source and err.errno in (errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENODEV)):
            raise
    # Refused (an unprivileged user may not mount sysfs without its own netns, proc without its
    # own pidns; cgroup v1 needs per-controller mounts): bind the host's instance instead.
    sc.mount(op.fallback_source, target, None, sc.MS_BIND | sc.MS_REC, None, shown_target=shown)
    return True


def _cgroup2_host(path: str = "/sys/fs/cgroup") -> bool:
    """The host's /sys/fs/cgroup is one cgroup v2 hierarchy (read before pivot_root)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return sc.fstatfs_type(fd, path) == CGROUP2_SUPER_MAGIC
    finally:
        os.close(fd)


CGROUP2_SUPER_MAGIC = 0x63677270


def _own_cgroup2(mount: str = "/sys/fs/cgroup") -> str:
    """This process's cgroup v2 folder in the host's tree (the init is in the container's
    cgroup by now), else the whole tree."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return os.path.join(mount, line[3:].strip().lstrip("/"))
    except OSError:
        pass
    return mount


def _host_bind(op: mounts.Mount, source: str) -> mounts.Mount:
    """A bind of the host's instance standing in for a filesystem: its flags (ro above all)
    hold for every mount below it, or a read-only /sys/fs/cgroup would have writable
    controllers under it."""
    attr_set, attr_clear = _attributes(op.flags)
    attr_set |= op.recursive[0]
    return mounts.Mount(op.destination, None, source, op.flags | sc.MS_BIND | sc.MS_REC, "", op.propagation,
                        True, None, (attr_set, attr_clear | op.recursive[1]))


def _attributes(flags: int) -> tuple[int, int]:
    pairs = ((sc.MS_RDONLY, sc.MOUNT_ATTR_RDONLY), (sc.MS_NOSUID, sc.MOUNT_ATTR_NOSUID),
             (sc.MS_NODEV, sc.MOUNT_ATTR_NODEV), (sc.MS_NOEXEC, sc.MOUNT_ATTR_NOEXEC))
    return sum(attr for ms, attr in pairs if flags & ms), 0


def apply_mount(root: Rootfs, op: mounts.Mount) -> None:
    shown = root.path + op.destination
    if op.bind:
        try:
            directory = stat.S_ISDIR(os.stat(op.source).st_mode)
        except OSError as err:
            raise RootlessError(f"mount {op.destination}: source {op.source}: {err.strerror}") from None
    else:
        directory = True
    if op.fstype in ("cgroup", "cgroup2"):
        if _cgroup2_host():
            # A cgroup2 mount made in the container's own cgroup namespace shows the container's
            # cgroup as its root, with its limits (runc mounts it so); where the kernel refuses
            # (no cgroup namespace of its own), _mount_filesystem binds the container's own
            # cgroup from the host's tree, as runc falls back to.
            op = mounts.Mount(op.destination, "cgroup2", "cgroup", op.flags, "", op.propagation, False,
                              _own_cgroup2(), op.recursive)
        else:
            # cgroup v1 needs one mount per controller (hybrid hosts): the host's tree, bound.
            op = _host_bind(op, "/sys/fs/cgroup")
    flags, data = op.flags, op.data
    if op.fstype in ("proc", "sysfs") and not op.bind:
        root.require_plain_directory(op.destination, op.fstype)
    if op.fstype == "tmpfs" and not op.bind:
        # A tmpfs keeps the mode of the directory it covers unless the options say otherwise
        # (current runc: mode= of the directory goes first, a given mode= wins).
        mode = root.existing_mode(op.destination)
        if mode is not None:
            data = ",".join(filter(None, [f"mode={mode:04o}", data]))
    if op.writable_first:
        # Read-only only once filled (tmpcopyup) or, for /dev, once its nodes exist (finish()).
        flags &= ~sc.MS_RDONLY
    fd = root.make_target(op.destination, directory)
    try:
        _check_proc_destination(root, fd, op)
    except BaseException:
        os.close(fd)
        raise
    # tmpcopyup: the destination's directory, held open, is still readable under the new tmpfs.
    below = os.open(_fd_path(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if op.copy_up else None
    try:
        if op.idmap:
            mountext.idmapped_bind(op, fd, shown=shown)
        elif op.bind:
            sc.mount(op.source, _fd_path(fd), None, sc.MS_BIND | (op.flags & sc.MS_REC), None, shown_target=shown)
        elif _mount_filesystem(op, _fd_path(fd), shown, flags, data):
            op = _host_bind(op, op.fallback_source)
        if below is not None:
            top = root.resolve(op.destination, os.O_RDONLY | os.O_DIRECTORY)
            try:
                mountext.copy_tree(below, top, op.destination)
            finally:
                os.close(top)
    finally:
        os.close(fd)
        if below is not None:
            os.close(below)
    # The fd named the directory under the new mount: open the mount itself for what follows.
    fd = root.resolve(op.destination)
    try:
        if op.bind and op.remount_flags:
            remount_bind(_fd_path(fd), op.remount_flags, shown)
        elif op.writable_first and op.flags & sc.MS_RDONLY and os.path.normpath(op.destination) != "/dev":
            remount_bind(_fd_path(fd), op.remount_flags, shown)
        if op.recursive != (0, 0):
            sc.mount_setattr_recursive(fd, *op.recursive, shown=shown)
        for propagation in op.propagation:
            sc.mount(None, _fd_path(fd), None, propagation, None, shown_target=shown)
    finally:
        os.close(fd)


def apply_device(root: Rootfs, op: mounts.Device, may_mknod: bool) -> None:
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    parent = root.make_dirs(os.path.dirname(op.path))
    name = os.path.basename(op.path)
    try:
        if may_mknod:
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
            # Exactly fileMode's permission bits (its file-type bits, as podman sends them, are
            # ignored): not the caller's umask, which runc clears for mknod too.
            umask = os.umask(0)
            try:
                os.mknod(name, kinds[op.dev_type] | (op.mode & 0o7777), os.makedev(op.major, op.minor),
                         dir_fd=parent)
            finally:
                os.umask(umask)
            os.chown(name, op.uid, op.gid, dir_fd=parent, follow_symlinks=False)
            return
    except PermissionError:
        pass  # a user namespace may not mknod: bind the host's node as below
    finally:
        os.close(parent)
    fd = root.make_target(op.path, directory=False)
    try:
        sc.mount(op.path, _fd_path(fd), None, sc.MS_BIND, None, shown_target=root.path + op.path)
    finally:
        os.close(fd)


def apply_symlink(root: Rootfs, op: mounts.Symlink) -> None:
    parent = root.make_dirs(os.path.dirname(op.path))
    name = os.path.basename(op.path)
    try:
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        os.symlink(op.target, name, dir_fd=parent)
    finally:
        os.close(parent)


def apply_plan(rootfs: str, plan: list, *, may_mknod: bool) -> None:
    root = Rootfs(rootfs)
    try:
        for op in plan:
            if op.kind == "mount":
                apply_mount(root, op)
            elif op.kind == "device":
                apply_device(root, op, may_mknod)
            else:
                apply_symlink(root, op)
    finally:
        root.close()


def pivot(rootfs: str, no_pivot: bool) -> None:
    os.chdir(rootfs)
    if no_pivot:
        sc.mount(rootfs, "/", None, sc.MS_MOVE)
        os.chroot(".")
    else:
        # pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the
        # container's tree. Making it slave first keeps the unmount from reaching the host.
        # "." must name the old root for that (runc's fchdir(oldroot)): the cwd is still the new
        # root underneath, and making that rslave would cut a shared volume's propagation.
        old_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sc.pivot_root(".", ".")
            os.fchdir(old_root)
        finally:
            os.close(old_root)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def finish(config: dict, plan: list) -> None:
    """After pivot_root: /dev read-only if asked, read-only and masked paths, the read-only
    root, rootfs propagation."""
    linux = config.get("linux", {})
    for op in plan:
        if (op.kind == "mount" and op.writable_first and op.flags & sc.MS_RDONLY
                and os.path.normpath(op.destination) == "/dev"):
            remount_bind("/dev", op.remount_flags, "/dev")
    # runc's order: read-only paths, then masked ones (a mask inside a read-only path lands on top).
    for path in dict.fromkeys(linux.get("readonlyPaths", [])):
        try:
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC, None)
        except SyscallError as err:
            if err.errno == errno.ENOENT:
                continue
            raise
        remount_bind(path, sc.MS_RDONLY, path)
    mask(linux.get("maskedPaths", []))
    if config.get("root", {}).get("readonly"):
        remount_bind("/", sc.MS_RDONLY, "/")
    propagation = linux.get("rootfsPropagation")
    if propagation in ("shared", "rshared"):
        sc.mount(None, "/", None, mounts.PROPAGATION[propagation], None)


def mask(paths: list[str]) -> None:
    """Files get /dev/null bound over them; directories one read-only tmpfs, shared by all of
    them (current runc: one superblock, not one per directory). A path listed twice is masked
    once."""
    null_checked = False
    shared = None  # the first masked directory: the others bind its tmpfs
    for path in dict.fromkeys(paths):
        try:
            directory = stat.S_ISDIR(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if directory and shared is None:
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
            shared = path
        elif directory:
            sc.mount(shared, path, None, sc.MS_BIND, None)
        else:
            if not null_checked:
                _check_dev_null()
                null_checked = True
            sc.mount("/dev/null", path, None, sc.MS_BIND, None)


def _check_dev_null() -> None:
    """The container's /dev/null must be the null device: a file put there by the image would
    be bound over the masked files instead (runc checks it too). Nothing in the container runs
    yet that could swap it after the check."""
    try:
        info = os.stat("/dev/null")
    except OSError as err:
        raise RootlessError(f"maskedPaths: /dev/null: {err.strerror}: the container needs a /dev with a null "
                            "device to mask files") from None
    if not stat.S_ISCHR(info.st_mode) or (os.major(info.st_rdev), os.minor(info.st_rdev)) != (1, 3):
        raise RootlessError("maskedPaths: /dev/null in the container is not the null device (1:3): "
                            "refusing to mask files with it")
