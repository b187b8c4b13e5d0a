"""The cache of compiled seccomp filters: a hit gives what a miss gives (the same BPF, flags and
warnings, and the same errno in a process that loads it), loads no binding at all, and anything
in the cache the caller did not write itself, or that is damaged, is compiled again."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rootless.errors import ConfigError
from rootless.process import seccomp, seccomp_cache
from test_seccomp import errno_of, in_child, needs_libseccomp, podman_profile

pytestmark = needs_libseccomp
# The code this test imports, for a fresh interpreter: the cache's key includes it.
ROOT = str(Path(seccomp.__file__).parents[2])
MKDIR_EPERM = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def env_for(directory: Path) -> dict:
    return {"ROOTLESS_SECCOMP_CACHE": str(directory)}


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("seccomp-*"))


def same(a: tuple, b: tuple) -> bool:
    (pa, wa), (pb, wb) = a, b
    return (pa.bpf, pa.flags, pa.notify, wa) == (pb.bpf, pb.flags, pb.notify, wb)


def mkdir_errno_under(program: seccomp.Program, tmp_path: Path) -> int:
    def child():
        seccomp.load(program)
        return errno_of(os.mkdir, tmp_path / "child")
    status, seen = in_child(child)
    assert status == 0
    return seen


def test_a_hit_gives_what_a_miss_gives(tmp_path):
    cache = tmp_path / "cache"
    profile = podman_profile()
    miss = seccomp_cache.compile(profile, env_for(cache))
    assert miss[0].filter is not None                      # compiled by libseccomp
    [entry] = entries(cache)
    assert (os.stat(cache).st_mode & 0o777, os.stat(entry).st_mode & 0o777) == (0o700, 0o600)
    hit = seccomp_cache.compile(profile, env_for(cache))
    assert hit[0].filter is None                           # read from the entry
    assert same(miss, hit) and same(hit, seccomp.compile(profile))
    assert miss[1] and all("does not know" in w for w in miss[1])   # the warnings come back too
    assert entries(cache) == [entry]


def test_what_a_process_sees_under_a_hit_and_a_miss(tmp_path):
    cache = tmp_path / "cache"
    miss, _ = seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    hit, _ = seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    assert hit.filter is None
    assert mkdir_errno_under(miss, tmp_path) == mkdir_errno_under(hit, tmp_path) == errno.EPERM


def test_notify_flags_survive_the_cache(tmp_path):
    cache = tmp_path / "cache"
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
               "listenerPath": "/run/agent.sock",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    miss = seccomp_cache.compile(profile, env_for(cache))
    hit = seccomp_cache.compile(profile, env_for(cache))
    assert hit[0].filter is None and same(miss, hit)
    assert hit[0].notify and hit[0].flags == 8 | 4         # NEW_LISTENER | SPEC_ALLOW


def test_another_profile_is_another_entry(tmp_path):
    cache = tmp_path / "cache"
    seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    other = {**MKDIR_EPERM, "syscalls": [{**MKDIR_EPERM["syscalls"][0], "errnoRet": 13}]}
    program, _ = seccomp_cache.compile(other, env_for(cache))
    assert program.filter is not None and len(entries(cache)) == 2
    assert mkdir_errno_under(program, tmp_path) == errno.EACCES


def test_a_hit_loads_no_binding(tmp_path):
    cache = tmp_path / "cache"
    seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from rootless.process import seccomp_cache as c; "
            f"p, _ = c.compile({MKDIR_EPERM!r}); assert p.filter is None; "
            "print(sorted(m for m in ('pyseccomp', 'ctypes', 'ctypes.util', 'hashlib', 'subprocess', 'json') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-c", code], env={**os.environ, **env_for(cache)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_binding_loads_without_ctypes_util():
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from rootless.process import seccomp; seccomp.binding(); "
            "print(sorted(m for m in ('ctypes.util', 'subprocess', 'shutil') if m in sys.modules), "
            "'pyseccomp' in sys.modules, hasattr(sys.modules['ctypes'], 'util'))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True False"


def damage_truncate(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:-8])


def damage_program(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF                       # a BPF constant: ALLOW could become anything
    entry.write_bytes(bytes(data))


def damage_garbage(entry: Path) -> None:
    entry.write_bytes(b"\x00\xff" * 100)


def damage_library(entry: Path) -> None:
    lines = entry.read_bytes().split(b"\n")
    lines[2] = b"1 2 3 4 " + lines[2].split(b" ", 4)[4]   # libseccomp was another file
    entry.write_bytes(b"\n".join(lines))


def damage_warnings(entry: Path) -> None:
    lines = entry.read_bytes().split(b"\n")
    fields = lines[3].split(b" ")
    fields[4] = b"-1"
    lines[3] = b" ".join(fields)
    entry.write_bytes(b"\n".join(lines))


def damage_writable(entry: Path) -> None:
    os.chmod(entry, 0o666)                 # anyone could have written it


def damage_symlink(entry: Path) -> None:
    elsewhere = entry.parent.parent / "planted"
    elsewhere.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(elsewhere)


def damage_foreign_owner(entry: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the entry to another user")
    os.chown(entry, 65534, 65534)


@pytest.mark.parametrize("damage", [damage_truncate, damage_program, damage_garbage, damage_library,
                                    damage_warnings, damage_writable, damage_symlink, damage_foreign_owner])
def test_a_damaged_or_foreign_entry_is_compiled_again(tmp_path, damage):
    cache = tmp_path / "cache"
    first = seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    [entry] = entries(cache)
    damage(entry)
    again = seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    assert again[0].filter is not None and same(first, again)     # a miss, not the entry
    assert not entry.is_symlink() and entry.stat().st_mode & 0o777 == 0o600 and entry.stat().st_uid == os.geteuid()
    hit = seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
    assert hit[0].filter is None and same(first, hit)             # replaced by a good one
    assert mkdir_errno_under(hit[0], tmp_path) == errno.EPERM


def test_a_directory_others_can_write_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    for _ in range(2):
        program, _ = seccomp_cache.compile(MKDIR_EPERM, env_for(cache))
        assert program.filter is not None
    assert entries(cache) == []


def test_an_empty_setting_turns_the_cache_off(tmp_path):
    assert seccomp_cache.directory_path({"ROOTLESS_SECCOMP_CACHE": ""}) is None
    assert seccomp_cache.compile(MKDIR_EPERM, {"ROOTLESS_SECCOMP_CACHE": ""})[0].filter is not None


def test_the_default_directory_is_beside_the_state_root():
    assert seccomp_cache.directory_path({"XDG_RUNTIME_DIR": "/run/user/1000"}) in (
        "/run/user/1000/rootless-cache", "/run/rootless-cache")      # root in the host's namespace


def test_a_profile_libseccomp_refuses_is_not_cached(tmp_path):
    cache = tmp_path / "cache"
    bad = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["read", "write", "open", "close"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"},
                                  {"index": 1, "value": v, "op": "SCMP_CMP_EQ"}]} for v in range(1200)]}
    with pytest.raises(ConfigError, match="BPF instructions"):
        seccomp_cache.compile(bad, env_for(cache))
    assert entries(cache) == []


def test_old_entries_go_beyond_the_limit(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(seccomp_cache, "_KEEP", 2)
    for value in (1, 2, 3):
        seccomp_cache.compile({**MKDIR_EPERM, "syscalls": [{**MKDIR_EPERM["syscalls"][0], "errnoRet": value}]},
                              env_for(cache))
    assert len(entries(cache)) == 2
