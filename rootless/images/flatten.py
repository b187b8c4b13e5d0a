"""Copy an image's unpacked layers, in order, into one plain directory (a bundle's rootfs).

Runs as root of the store's user namespace, like unpacking. Whiteouts (0:0 character devices)
remove what lower layers put there; an opaque directory (user.overlay.opaque=y) hides the
lower layers' contents of that directory. Owners, modes (setuid included), xattrs, times and
the hard links of each layer are kept. Files are copied, not linked: a container writing to its
root must never change the store.
"""

import os
import stat


SKIP_XATTRS = ("user.overlay.", "trusted.overlay.")


def flatten(layers: list[str], dest: str) -> None:
    if not os.path.isdir(dest):
        os.mkdir(dest, 0o755)
    for layer in layers:
        _apply(layer, dest, {}, top=True)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _opaque(path: str) -> bool:
    try:
        from rootless.images.unpack import OPAQUE_XATTR  # tarfile: only when flattening
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _apply(src: str, dst: str, links: dict, top: bool = False) -> None:
    if not top and _opaque(src):
        for entry in os.listdir(dst):
            _remove(os.path.join(dst, entry))
    with os.scandir(src) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            target = os.path.join(dst, entry.name)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # a whiteout
                _remove(target)
                continue
            if stat.S_ISDIR(st.st_mode):
                if not (os.path.isdir(target) and not os.path.islink(target)):
                    _remove(target)
                    os.mkdir(target, 0o700)
                _apply(entry.path, target, links)
                _attributes(entry.path, target, st)
                continue
            _remove(target)
            if copy_entry(entry.path, target, st, links):
                _attributes(entry.path, target, st)
    if top:
        _attributes(src, dst, os.lstat(src))


def copy_entry(src: str, target: str, st: os.stat_result, links: dict) -> bool:
    """A layer's non-directory entry at `target` (which does not exist): a hard link to the
    copy made before of the same inode (links: (dev, ino) -> that copy), else a new file of its
    kind. True when a new inode was made: its owner, mode, xattrs and times are the caller's
    to set (once per inode)."""
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in links:
        os.link(links[key], target, follow_symlinks=False)
        return False
    if stat.S_ISREG(st.st_mode):
        import shutil  # here: `rlx run` reads /etc/passwd through this module, and copies nothing
        shutil.copyfile(src, target, follow_symlinks=False)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), target)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(target, 0o600)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        # in a user namespace only whiteouts (0:0) are in a layer: unpacking skipped devices
        os.mknod(target, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
    else:
        return False  # sockets are never in a layer
    if st.st_nlink > 1:
        links[key] = target
    return True


def _attributes(src: str, dst: str, st: os.stat_result) -> None:
    os.lchown(dst, st.st_uid, st.st_gid)
    link = stat.S_ISLNK(st.st_mode)
    if not link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:
        if name.startswith(SKIP_XATTRS):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            pass  # a namespace the destination's filesystem lacks: the file is still right
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def read_account_files(rootfs: str) -> tuple[str, str]:
    """/etc/passwd and /etc/group of the image, without following a symlink out of it."""
    texts = []
    for name in ("passwd", "group"):
        try:
            etc = os.open(os.path.join(rootfs, "etc"), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=etc)
            finally:
                os.close(etc)
            with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
                texts.append(f.read(1 << 20))
        except OSError:
            texts.append("")
    return texts[0], texts[1]
