"""The package's compiled modules in one file, so that a `rootless` call finds them without
importlib's path finder.

Every runtime call is a fresh Python that imports 40 to 60 of our modules (podman makes five
or more calls per container). For each, the path finder runs in importlib's Python code: it
looks the name up in the folder's listing, stats the source, opens, reads and checks the .pyc.
That costs about as much as running the modules. packaging/install-deps writes, once pip has
installed the package, an image of every module's code beside this file
(`python -m rootless.modimage`); the launchers put ImageFinder first on sys.meta_path, and a
module in the image costs one stat and one read.

The image is checked as a .pyc is: a module whose source's size or mtime differs from the
image's record is found the usual way, and so is every module when the image is missing,
unreadable, or was written by another Python (its magic number). An image written again after
this process read its index is not read at the old offsets: the module's source is compiled.

Layout: a header (the interpreter's magic number, IMAGE_TAG, the index's length as 8 bytes
little-endian), the marshalled index {module name: (source path, is a package, source mtime_ns,
source size, offset, length)}, then each module's marshalled code object (offsets counted from
the first).
"""

import marshal
import os
import sys

IMAGE_NAME = "modules.image"
IMAGE_TAG = b"RLXM"
PACKAGES = ("rootless", "idmap", "netns")
_HEADER_SIZE = 16
# importlib's own, frozen into the interpreter: nothing to import.
_bootstrap = sys.modules["_frozen_importlib"]
_MAGIC = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


class ImageFinder:
    """A meta path finder and loader for the modules recorded in one image."""

    def __init__(self, path: str, index: dict, codes_start: int, identity: tuple):
        self.path = path
        self.index = index
        self.codes_start = codes_start
        self.identity = identity  # of the image file whose index this is

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        origin, is_package, mtime_ns, size = entry[:4]
        try:
            st = os.stat(origin)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None
        spec = _bootstrap.ModuleSpec(name, self, origin=origin, is_package=is_package)
        if is_package:
            # Submodules left out of the image are still found beside the package's __init__.
            spec.submodule_search_locations = [os.path.dirname(origin)]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        exec(self.get_code(module.__name__), module.__dict__)

    def get_code(self, name: str):
        origin, _, _, _, offset, length = self.index[name]
        # Opened for each module rather than kept open: a caller's fd numbers stay free until
        # the runtime has checked them (--preserve-fds).
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None
        if fd is not None:
            try:
                if _identity(os.fstat(fd)) == self.identity:
                    return marshal.loads(os.pread(fd, length, self.codes_start + offset))
            finally:
                os.close(fd)
        # The image was written again (an upgrade) since this process read its index, whose
        # offsets no longer hold: the source, checked by find_spec.
        return _compile(origin)

    def is_package(self, name: str) -> bool:
        return self.index[name][1]

    def get_filename(self, name: str) -> str:
        return self.index[name][0]

    def get_source(self, name: str):
        with open(self.index[name][0], encoding="utf-8") as f:
            return f.read()


def _compile(path: str):
    """The module at path compiled as importlib compiles a .pyc: the same flags, the same file
    name in tracebacks."""
    with open(path, "rb") as f:
        return compile(f.read(), path, "exec", dont_inherit=True)


def _identity(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def read_index(path: str) -> tuple[dict, int, tuple] | None:
    """The image's index, where its codes start and the file's identity, or None when there is
    no image this interpreter can use."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        header = os.pread(fd, _HEADER_SIZE, 0)
        if len(header) != _HEADER_SIZE or header[:4] != _MAGIC or header[4:8] != IMAGE_TAG:
            return None
        length = int.from_bytes(header[8:], "little")
        return marshal.loads(os.pread(fd, length, _HEADER_SIZE)), _HEADER_SIZE + length, _identity(os.fstat(fd))
    except (OSError, ValueError, EOFError, TypeError):
        return None
    finally:
        os.close(fd)


def install(path: str = os.path.join(os.path.dirname(__file__), IMAGE_NAME)) -> ImageFinder | None:
    """Put the finder of the image at `path` first on sys.meta_path, if there is an image."""
    found = read_index(path)
    if found is None:
        return None
    finder = ImageFinder(path, *found)
    sys.meta_path.insert(0, finder)
    return finder


def modules(site: str, packages=PACKAGES):
    """(module name, source path, is a package) of every module of `packages` under `site`."""
    for package in packages:
        for folder, dirs, files in os.walk(os.path.join(site, package)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            if "__init__.py" not in files:
                dirs[:] = []
                continue
            prefix = os.path.relpath(folder, site).replace(os.sep, ".")
            for file in sorted(files):
                if file.endswith(".py"):
                    stem = file[:-3]
                    yield (prefix if stem == "__init__" else f"{prefix}.{stem}",
                           os.path.join(folder, file), stem == "__init__")


def build(site: str, packages=PACKAGES, path: str | None = None) -> str:
    """Write the image of every module of `packages` under `site` (atomically) to `path`
    (rootless/modules.image under `site`) and return its path."""
    index, blobs, offset = {}, [], 0
    for name, source_path, is_package in modules(site, packages):
        # Before the read: a source changed meanwhile no longer matches its record.
        st = os.stat(source_path)
        blob = marshal.dumps(_compile(source_path))
        index[name] = (source_path, is_package, st.st_mtime_ns, st.st_size, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    encoded = marshal.dumps(index)
    path = path or os.path.join(site, "rootless", IMAGE_NAME)
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(_MAGIC + IMAGE_TAG + len(encoded).to_bytes(8, "little") + encoded)
        for blob in blobs:
            f.write(blob)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return path


if __name__ == "__main__":
    print(build(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
