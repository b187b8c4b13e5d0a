"""Compiled seccomp filters kept between calls, so a profile seen before loads no libseccomp.

podman hands every container the same profile of about 400 rules. Compiling it costs the
binding's import (typing, ctypes, libseccomp: 5-20 ms here) and libseccomp's work (15-60 ms
here under load); runc compiles in Go in a few ms. What `seccomp.compile` returns (the BPF, its
flags, whether it notifies, and the warnings) depends only on the profile, the code that compiles
it, libseccomp, the architecture and the kernel (which flags it accepts), so it is kept, one
file per profile, in a cache directory beside the default state root (`$XDG_RUNTIME_DIR/
rootless-cache` for most users, a tmpfs emptied at boot). `ROOTLESS_SECCOMP_CACHE` names another
directory, or turns the cache off when empty.

A cache entry becomes the container's filter, so only what the caller itself could have
written is read: the directory is opened without following links and must be ours and not
writable by group or others (else the cache is not used at all), an entry must be a regular
file of ours with the same mode rule, and its contents are checked before use: the format, the
full key's digest, the identity of the libseccomp file it was compiled with (path, inode, size,
mtime: an upgrade is a miss), and a digest of the program. Anything that fails a check is a
miss: compiled again and replaced (atomically: a temporary file renamed over it). Errors of the
cache itself are never the caller's problem; a profile libseccomp refuses is never cached.

An entry (text lines, then the program):
    rootless seccomp cache 1
    KEY_DIGEST
    LIBSECCOMP_DEV LIBSECCOMP_INO LIBSECCOMP_SIZE LIBSECCOMP_MTIME_NS LIBSECCOMP_PATH
    FLAGS NOTIFY BPF_BYTES BPF_DIGEST WARNING_COUNT
    WARNING (one line each)
    BPF (BPF_BYTES bytes)
"""

import os
import stat
import sys

from rootless import paths
from rootless.hashing import sha256
from rootless.process import seccomp

_MAGIC = b"rootless seccomp cache 1"
_MAX_ENTRY = 64 * 1024          # the kernel's 4096 instructions are 32 KiB; warnings are short
_KEEP = 64                      # entries kept; a miss beyond that removes the oldest


def compile(profile: dict, env=os.environ) -> tuple[seccomp.Program, list[str]]:
    """seccomp.compile, answered from the cache when the same profile was compiled before by
    the same code, libseccomp and kernel. A hit returns a Program without `filter` (libseccomp's
    object): nothing of libseccomp is loaded."""
    directory = _open_directory(env)
    if directory is None:
        return seccomp.compile(profile)
    try:
        digest = sha256()(_key(profile)).hexdigest()
        name = f"seccomp-{digest}"
        found = _read(directory, name, digest)
        if found is not None:
            return found
        program, warnings = seccomp.compile(profile)
        _write(directory, name, digest, program, warnings)
        return program, warnings
    finally:
        os.close(directory)


def directory_path(env=os.environ) -> str | None:
    configured = env.get("ROOTLESS_SECCOMP_CACHE")
    if configured is not None:
        return configured or None
    return paths.default_state_root(env) + "-cache"


def _key(profile: dict) -> bytes:
    """Everything the compiled program depends on but libseccomp (checked in the entry, as
    finding its file needs the loader). repr is exact for what a JSON parser returns; the same
    profile written in another key order is another entry, not a wrong one."""
    code = os.stat(seccomp.__file__)
    uname = os.uname()
    return "\n".join((_MAGIC.decode(), uname.machine, uname.release, str(sys.maxsize),
                      f"{code.st_size} {code.st_mtime_ns}", repr(profile))).encode()


def _open_directory(env) -> int | None:
    """An fd of the cache directory (made 0700 when missing), or None when there is none we
    may trust: every later access goes through it, so no path is looked up twice."""
    path = directory_path(env)
    if path is None:
        return None
    try:
        os.mkdir(path, 0o700)
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if not _ours(os.fstat(fd)):
        os.close(fd)
        return None
    return fd


def _ours(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read(directory: int, name: str, digest: str) -> tuple[seccomp.Program, list[str]] | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and _ours(st) and st.st_size <= _MAX_ENTRY):
            return None
        data = os.read(fd, _MAX_ENTRY + 1)
        found = _parse(data, digest)
        if found is not None:
            os.utime(fd)            # recently used: kept when old entries go
        return found
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _parse(data: bytes, digest: str) -> tuple[seccomp.Program, list[str]] | None:
    """The entry's program and warnings if every check holds, else None. Malformed numbers
    raise ValueError, which the caller takes as a miss."""
    lines = data.split(b"\n", 4)
    if len(lines) != 5 or lines[0] != _MAGIC or lines[1].decode() != digest:
        return None
    dev, ino, size, mtime, library = lines[2].decode().split(" ", 4)
    try:
        lib = os.stat(library)
    except OSError:
        return None
    if (lib.st_dev, lib.st_ino, lib.st_size, lib.st_mtime_ns) != (int(dev), int(ino), int(size), int(mtime)):
        return None
    flags, notify, length, bpf_digest, count = lines[3].decode().split(" ")
    if int(count) < 0:
        return None
    rest = lines[4].split(b"\n", int(count))
    if len(rest) != int(count) + 1:
        return None
    warnings, bpf = [line.decode() for line in rest[:-1]], rest[-1]
    if (len(bpf) != int(length) or not bpf or len(bpf) % 8 or len(bpf) // 8 > seccomp.BPF_MAXINSNS
            or sha256()(bpf).hexdigest() != bpf_digest or notify not in ("0", "1")):
        return None
    return seccomp.Program(bpf, int(flags), notify == "1"), warnings


def _library() -> tuple[str, os.stat_result] | None:
    """The libseccomp file this process loaded (compile loaded it), from /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.rstrip("\n").split(None, 5)[-1]
            if "/libseccomp.so" in path and path.startswith("/"):
                return path, os.stat(path)
    return None


def _write(directory: int, name: str, digest: str, program: seccomp.Program, warnings: list[str]) -> None:
    try:
        library = _library()
        if library is None or "\n" in library[0] or any("\n" in w for w in warnings):
            return
        path, lib = library
        header = [_MAGIC.decode(), digest, f"{lib.st_dev} {lib.st_ino} {lib.st_size} {lib.st_mtime_ns} {path}",
                  f"{program.flags} {int(program.notify)} {len(program.bpf)} "
                  f"{sha256()(program.bpf).hexdigest()} {len(warnings)}", *warnings]
        data = "\n".join(header).encode() + b"\n" + program.bpf
        temporary = f".{name}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=directory)
        try:
            with open(fd, "wb", closefd=False) as out:
                out.write(data)
            os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            os.unlink(temporary, dir_fd=directory)
            raise
        finally:
            os.close(fd)
        _trim(directory)
    except OSError:
        pass            # a cache that cannot be written is only slower


def _trim(directory: int) -> None:
    """Keep the most recently used entries (a hit touches its entry)."""
    names = [n for n in os.listdir(directory) if n.startswith("seccomp-")]
    if len(names) <= _KEEP:
        return
    ages = []
    for n in names:
        try:
            ages.append((os.stat(n, dir_fd=directory, follow_symlinks=False).st_mtime_ns, n))
        except OSError:
            pass
    for _, n in sorted(ages)[:len(ages) - _KEEP]:
        try:
            os.unlink(n, dir_fd=directory)
        except OSError:
            pass
