"""Unpack one layer tarball into a fresh directory, in the form the overlay below expects.

Runs as root of the store's user namespace (images/userns.py), so the owners in the archive
are set with plain lchown: UID 33 in the image becomes subordinate UID 33 on disk.

Safety, member by member (a layer comes from a registry or a file we do not trust):
- names are relative, without `..`: an absolute name or a `..` component refuses the layer;
- every directory on the way to a member is a real directory made by this layer, never a
  symlink (a symlink in the path refuses the layer), so nothing is written outside `dest`;
- hard links point inside the layer by the same rules;
- the decompressed stream is capped (`max_bytes`): a decompression bomb is refused.
Any refusal raises ImageError; the caller discards the half-made directory.

Overlay form (overlayfs(5), with `userxattr`): a whiteout `.wh.NAME` becomes a character
device 0:0 named NAME (a user namespace may make that one device since Linux 5.8), and
`.wh..wh..opq` marks its directory opaque with the xattr user.overlay.opaque=y.
Device nodes are skipped with a note (mknod needs real root); setuid bits, hard links, PAX long
names, sparse files and xattrs (security.capability, user.*) are kept.
"""

import gzip
import os
import stat
import tarfile
import zlib

from rootless.images.digest import HashingReader, ImageError

OPAQUE_XATTR = "user.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XATTR_PAX = "SCHILY.xattr."


class _Peek:
    """A reader whose first bytes were already read to sniff the compression."""

    def __init__(self, raw, head: bytes):
        self.raw, self.head = raw, head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:size], self.head[size:]
            if len(data) < size:
                data += self.raw.read(size - len(data))
            return data
        return self.raw.read(size)


def decompressed(raw):
    """A reader of the uncompressed tar inside `raw`: gzip, zstd or none, by magic number."""
    head = raw.read(4)
    peek = _Peek(raw, head)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=peek, mode="rb")
    if head == ZSTD_MAGIC:
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(peek, read_across_frames=True)
    return peek


def unpack_layer(blob_path: str, dest: str, *, digest: str | None, diff_id: str | None, max_bytes: int,
                 in_userns: bool = True) -> list[str]:
    """Unpack the blob at blob_path into dest (which must not exist); verify the blob against
    `digest` and the uncompressed tar against `diff_id` (either may be None). Returns notes
    (skipped devices and the like) for the user."""
    shown = digest or os.path.basename(blob_path)
    too_big = _too_big(shown, max_bytes)
    notes: list[str] = []
    with open(blob_path, "rb") as raw_file:
        raw = HashingReader(raw_file)
        tar_stream = HashingReader(decompressed(raw), max_bytes, too_big)
        os.mkdir(dest, 0o755)
        try:
            with tarfile.open(fileobj=tar_stream, mode="r|", errorlevel=2) as tar:
                _Extractor(tar, dest, shown, notes, in_userns).run()
        except ImageError:
            raise
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise ImageError(f"layer {shown} is not a valid (compressed) tar archive: {err}") from None
        except OSError as err:
            where = f" `{err.filename}`" if err.filename else ""
            raise ImageError(f"layer {shown}: unpacking{where}: {err.strerror or err}") from None
        except Exception as err:  # zstandard.ZstdError and its kin
            if type(err).__module__.startswith("zstandard"):
                raise ImageError(f"layer {shown} is not a valid zstd stream: {err}") from None
            raise
        tar_stream.drain()
        raw.drain()
    if digest and raw.digest() != digest:
        raise ImageError(f"layer blob {digest} does not match its digest (got {raw.digest()}): "
                         "it was corrupted; pull or load the image again")
    if diff_id and tar_stream.digest() != diff_id:
        raise ImageError(f"layer {shown} uncompressed is {tar_stream.digest()}, but the image config says "
                         f"{diff_id}: the image is corrupt")
    return notes


def uncompressed_digest(blob_path: str, max_bytes: int) -> str:
    """The diff ID of a layer blob (for archives that do not say it)."""
    with open(blob_path, "rb") as raw_file:
        stream = HashingReader(decompressed(raw_file), max_bytes, _too_big("sha256:" + os.path.basename(blob_path), max_bytes))
        stream.drain()
    return stream.digest()


def _too_big(shown: str, max_bytes: int) -> ImageError:
    return ImageError(f"layer {shown} unpacks to more than {max_bytes} bytes: refused as a possible "
                      "decompression bomb (raise RLX_MAX_LAYER_SIZE if the image is genuine)")


def safe_parts(name: str, shown: str) -> list[str]:
    """The components of an archive path, refused if absolute or with `..`."""
    if name.startswith("/"):
        raise ImageError(f"layer {shown}: member {name!r} has an absolute path: refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"layer {shown}: member {name!r} climbs out with '..': refused")
    return parts


class _Extractor:
    def __init__(self, tar: tarfile.TarFile, dest: str, shown: str, notes: list[str], in_userns: bool):
        self.tar, self.dest, self.shown, self.notes = tar, dest, shown, notes
        self.in_userns = in_userns
        self.dirs: set[tuple[str, ...]] = {()}  # directories known to be real, made here
        self.dir_times: dict[tuple[str, ...], tarfile.TarInfo] = {}
        self.skipped_devices = 0

    def run(self) -> None:
        for member in self.tar:
            self._member(member)
        if self.skipped_devices:
            self.notes.append(f"layer {self.shown}: {self.skipped_devices} device node(s) skipped "
                              "(a rootless store cannot make devices; the runtime provides /dev)")
        for parts, member in sorted(self.dir_times.items(), key=lambda item: -len(item[0])):
            os.utime(self._path(parts), (member.mtime, member.mtime), follow_symlinks=False)

    def _path(self, parts) -> str:
        return os.path.join(self.dest, *parts)

    def _parent(self, parts: list[str], name: str) -> str:
        """The real directory that holds parts[-1], made (root-owned, 0755) where missing."""
        for depth in range(1, len(parts)):
            prefix = tuple(parts[:depth])
            if prefix in self.dirs:
                continue
            path = self._path(prefix)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise ImageError(f"layer {self.shown}: member {name!r} passes through the symlink "
                                     f"{'/'.join(prefix)!r}: refused")
                if not stat.S_ISDIR(st.st_mode):
                    raise ImageError(f"layer {self.shown}: member {name!r} passes through "
                                     f"{'/'.join(prefix)!r}, which is not a directory: refused")
            self.dirs.add(prefix)
        return self._path(parts[:-1])

    def _clear(self, parts: tuple[str, ...], keep_dir: bool) -> None:
        """Remove what is at `parts` (a later member replaces an earlier one)."""
        path = self._path(parts)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            import shutil
            shutil.rmtree(path)
            self.dirs = {d for d in self.dirs if d[:len(parts)] != parts}
            self.dir_times = {d: m for d, m in self.dir_times.items() if d[:len(parts)] != parts}
        else:
            os.unlink(path)

    def _member(self, member: tarfile.TarInfo) -> None:
        parts = safe_parts(member.name, self.shown)
        if not parts:  # the layer's root ("./"): its attributes apply to dest
            if member.isdir():
                self._attributes(member, self.dest)
            return
        parent = self._parent(parts, member.name)
        base = parts[-1]
        key = tuple(parts)
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = key[:-1] + (base[len(WHITEOUT_PREFIX):],)
            self._clear(hidden, keep_dir=False)
            os.mknod(self._path(hidden), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        path = self._path(key)
        self._clear(key, keep_dir=member.isdir())
        if member.isdir():
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self.dirs.add(key)
            self.dir_times[key] = member
        elif member.isreg():
            self.tar.makefile(member, path)  # sparse members keep their holes
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            target = safe_parts(member.linkname, self.shown)
            if not target:
                raise ImageError(f"layer {self.shown}: hard link {member.name!r} points at the layer's root: refused")
            target_path = os.path.join(self._parent(target, member.linkname), target[-1])
            try:
                if stat.S_ISDIR(os.lstat(target_path).st_mode):
                    raise ImageError(f"layer {self.shown}: hard link {member.name!r} points at a directory: refused")
                os.link(target_path, path, follow_symlinks=False)
            except FileNotFoundError:
                raise ImageError(f"layer {self.shown}: hard link {member.name!r} points at "
                                 f"{member.linkname!r}, which is not in the layer: refused") from None
            # Then its header's owner, mode and times are applied to the shared inode, as
            # Docker's and containers/storage's unpackers do (GNU tar would keep the target's).
        elif member.ischr() or member.isblk():
            if self.in_userns:
                self.skipped_devices += 1
                return
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            self.notes.append(f"layer {self.shown}: member {member.name!r} of unknown type {member.type!r} skipped")
            return
        self._attributes(member, path)

    def _attributes(self, member: tarfile.TarInfo, path: str) -> None:
        try:
            os.lchown(path, member.uid, member.gid)
        except OSError as err:
            if err.errno != 22:  # EINVAL: the ID is not in the namespace's map
                raise
            raise ImageError(f"layer {self.shown}: {member.name!r} is owned by {member.uid}:{member.gid}, "
                             "outside the IDs this user may map: add a larger range to /etc/subuid "
                             "and /etc/subgid") from None
        if not member.issym():
            os.chmod(path, stat.S_IMODE(member.mode))  # after chown, which clears setuid bits
        for key, value in member.pax_headers.items():
            if not key.startswith(XATTR_PAX):
                continue
            name = key[len(XATTR_PAX):]
            if name.startswith(("user.overlay.", "trusted.overlay.")):
                continue  # the overlay's own marks are made from whiteouts, never taken from images
            try:
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError as err:
                self.notes.append(f"layer {self.shown}: xattr {name} on {member.name!r} not kept: {err.strerror}")
        if not member.isdir():
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
