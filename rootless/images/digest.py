"""Content digests: parsing `sha256:HEX`, and readers and writers that hash what passes through
them, so a blob is verified in the same pass that stores or unpacks it."""

from rootless.errors import RootlessError
from rootless.hashing import sha256


class ImageError(RootlessError):
    """An image, a layer or a store that cannot be used as asked."""


def hex_of(digest: str) -> str:
    """The hex part of a sha256 digest; anything else is refused (it also names files)."""
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ImageError(f"unsupported or malformed digest {digest!r}: expected sha256:<64 hex digits>")
    return value


def digest_of(data: bytes) -> str:
    return "sha256:" + sha256()(data).hexdigest()


class HashingReader:
    """A file-like reader that hashes and counts what is read; `limit` bytes at most, past which
    `on_limit` is raised (a decompression bomb stops here, not on a full disk)."""

    def __init__(self, raw, limit: int | None = None, on_limit: Exception | None = None):
        import hashlib
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0
        self.limit = limit
        self.on_limit = on_limit

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise self.on_limit
        return data

    def drain(self) -> None:
        """Read to the end: the digest covers the whole stream, tar padding included."""
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()
