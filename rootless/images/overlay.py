"""A container's root from an image's layers: an overlay with a writable upper directory per
container, mounted by root of the container's user namespace (after unshare of a mount
namespace) with `userxattr` (Linux 5.11+: whiteouts and opaque marks as user.overlay.*, the
form images/unpack.py writes), so no real root is needed.

Where that mount is refused (an older kernel, a filesystem without user xattrs for the upper
directory), fuse-overlayfs is used if installed, else the layers are copied into the target
(images/flatten.py): slower and larger, but the same tree. The method chosen is returned, for
--debug to say.
"""

import os

from rootless.errors import SyscallError
from rootless.linux import syscalls

PAGE = 4096  # mount(2) data must fit in a page: about 50 layers of store paths


def overlay_options(layers: list[str], upper: str, work: str) -> str:
    """layers: bottom first (the image's order); overlay wants the top first."""
    lower = ":".join(path.replace(":", "\\:") for path in reversed(layers))
    return f"lowerdir={lower},upperdir={upper},workdir={work},userxattr"


def mount_root(layers: list[str], upper: str, work: str, target: str, *, debug=lambda message: None) -> str:
    """Mount (or build) the container's root at `target`. Returns "overlay", "fuse-overlayfs"
    or "copy". Call as root of the user namespace, in a mount namespace of its own."""
    for path in (upper, work, target):
        os.makedirs(path, mode=0o755, exist_ok=True)
    options = overlay_options(layers, upper, work)
    if len(options) < PAGE:
        try:
            syscalls.mount("overlay", target, "overlay", 0, options)
            return "overlay"
        except SyscallError as err:  # the kernel's reason goes to --debug
            debug(f"overlay mount refused ({err}): trying fuse-overlayfs, then a copy")
    else:
        debug(f"{len(layers)} layers do not fit one overlay mount's options: trying fuse-overlayfs, then a copy")
    import shutil
    import subprocess
    from rootless.images import flatten
    fuse = shutil.which("fuse-overlayfs")
    if fuse:
        lower = ":".join(reversed(layers))
        result = subprocess.run([fuse, "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", target],
                                capture_output=True, text=True)
        if result.returncode == 0:
            return "fuse-overlayfs"
        debug(f"fuse-overlayfs failed: {result.stderr.strip()}: copying the layers")
    flatten.flatten(layers, target)
    return "copy"
