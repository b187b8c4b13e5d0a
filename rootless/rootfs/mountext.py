"""The mount options that are the runtime's, not mount(2)'s: `tmpcopyup` (fill a new tmpfs with
what its destination held) and `idmap`/`ridmap` (a bind mount seen through ID maps, made with
open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount). rootless.rootfs.apply calls these while it
executes the mount plan, before pivot_root."""

import os
import stat

from rootless.linux import procfs
from rootless.linux import syscalls as sc
from rootless.errors import RootlessError, SyscallError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src_fd: int, dst_fd: int, shown: str) -> None:
    """Copy the contents of directory src_fd into directory dst_fd (cp -a: modes, owners,
    times, symlinks, devices and fifos), never following a symlink."""
    for entry in os.scandir(src_fd):
        name = entry.name
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        try:
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst_fd)
                sub_src = os.open(name, _DIR, dir_fd=src_fd)
                try:
                    sub_dst = os.open(name, _DIR, dir_fd=dst_fd)
                    try:
                        copy_tree(sub_src, sub_dst, f"{shown}/{name}")
                    finally:
                        os.close(sub_dst)
                finally:
                    os.close(sub_src)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(src_fd, dst_fd, name, st.st_size)
            else:
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)
        except OSError as err:
            raise RootlessError(f"tmpcopyup {shown}/{name}: {err.strerror}") from None


def _copy_file(src_fd: int, dst_fd: int, name: str, size: int) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dst_fd)
        try:
            while True:
                chunk = os.read(src, 1 << 20)
                if not chunk:
                    break
                os.write(dst, chunk)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def map_text(mappings: list[dict]) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def make_userns(uid_mappings: list[dict], gid_mappings: list[dict], proc: str = "/proc") -> int:
    """An fd of a new user namespace holding these maps, for MOUNT_ATTR_IDMAP. A child unshares
    it and says its PID as `proc` numbers it (this process may be PID 1 of a new PID namespace
    while `proc` is still the host's); we write its maps, open its namespace, and end it."""
    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_r)
            os.close(hold_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(report_w, os.readlink(f"{proc}/self").encode())
            os.close(report_w)
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(report_w)
    os.close(hold_r)
    try:
        seen = os.read(report_r, 32).decode()
        if not seen.isdigit():
            raise RootlessError("idmapped mount: the helper could not create a user namespace")
        base = f"{proc}/{seen}"
        for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            try:
                procfs.write_once(f"{base}/{name}", map_text(mappings))
            except OSError as err:
                raise RootlessError(f"idmapped mount: write {name} {map_text(mappings).strip()!r}: "
                                    f"{err.strerror}") from None
        return os.open(f"{base}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(report_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


def idmapped_tree(op, userns_path: str | None, *, shown: str) -> int:
    """A detached clone of op.source, idmapped (open_tree + mount_setattr(MOUNT_ATTR_IDMAP)) with
    the maps of the user namespace at userns_path, else of one made with op.idmap's; its fd."""
    flags = sc.OPEN_TREE_CLONE | (sc.AT_RECURSIVE if op.flags & sc.MS_REC else 0)
    tree = sc.open_tree(-100, op.source, flags, shown=op.source)  # -100: AT_FDCWD
    try:
        if userns_path:
            try:
                userns = os.open(userns_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise RootlessError(f"idmapped mount {op.destination}: open {userns_path}: {err.strerror}") from None
        else:
            userns = make_userns(op.idmap[0], op.idmap[1])
        try:
            sc.mount_setattr_idmap(tree, userns, op.idmap[2], shown=shown)
        except SyscallError as err:
            raise RootlessError(f"{err.message} (idmapped mounts need a filesystem that supports them and the "
                                "right to idmap it: real root, or for a rootless container a filesystem "
                                "mounted in its user namespace)") from None
        finally:
            os.close(userns)
    except BaseException:
        os.close(tree)
        raise
    return tree


def idmapped_bind(op, target_fd: int, *, shown: str) -> None:
    """Attach op's idmapped tree on the directory open at target_fd: the one the CLI process
    made (op.tree_fd, real root: the init may lack the right in a user namespace of its own),
    else one made here."""
    tree = op.tree_fd if op.tree_fd is not None else idmapped_tree(op, op.idmap_userns, shown=shown)
    try:
        sc.move_mount(tree, target_fd, shown=shown)
    finally:
        os.close(tree)
        op.tree_fd = None
