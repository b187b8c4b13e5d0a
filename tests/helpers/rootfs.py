"""A minimal rootfs from the host's static busybox (Debian busybox-static): no Python in it.

Also a command for scripts: python3 tests/helpers/rootfs.py DEST [--owner UID:GID]
"""

import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
EMPTY_DIRS = ("proc", "sys", "dev", "tmp", "etc", "root", "run", "var")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"


def build_busybox_rootfs(dest: Path, owner: tuple[int, int] | None = None, busybox: str = BUSYBOX) -> Path:
    """Fill `dest` (created) with /bin/busybox, one symlink per applet in /bin, /etc/passwd and
    /etc/group, and the usual empty mount points. Directories 0755 (tmp 1777); `owner` (root
    only) is applied to everything."""
    listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    dest = Path(dest)
    for name in ("", "bin", *EMPTY_DIRS):
        (dest / name).mkdir(mode=0o755, exist_ok=True)
        os.chmod(dest / name, 0o755)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copyfile(busybox, dest / "bin" / "busybox")
    os.chmod(dest / "bin" / "busybox", 0o755)
    for applet in listed:
        if applet != "busybox" and "/" not in applet:
            link = dest / "bin" / applet
            if not link.is_symlink():
                link.symlink_to("busybox")
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        (dest / "etc" / name).write_text(text)
        os.chmod(dest / "etc" / name, 0o644)
    if owner is not None:
        for directory, dirs, files in os.walk(dest):
            for path in [directory] + [os.path.join(directory, n) for n in dirs + files]:
                os.chown(path, *owner, follow_symlinks=False)
    return dest


def write_rootfs_tar(rootfs: Path, tar_path: Path) -> Path:
    """A tarball of `rootfs` whose files belong to root (for `podman import`)."""
    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(Path(rootfs).iterdir()):
            tar.add(entry, arcname=entry.name, filter=as_root)
    os.chmod(tar_path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    return Path(tar_path)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--owner"):
        print("usage: rootfs.py DEST [--owner UID:GID]", file=sys.stderr)
        return 2
    owner = tuple(int(n) for n in argv[2].split(":")) if len(argv) == 3 else None
    build_busybox_rootfs(Path(argv[0]), owner)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
