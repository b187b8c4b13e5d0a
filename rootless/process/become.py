"""The container process: environment, executable lookup, rlimits, user, capabilities.

The pure parts (environment, lookup rules, capability names) are separate from the calls that
change the current process, which the container init makes in runc's order.
"""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import stat

from rootless.process import attrs
from rootless.linux import procfs
from rootless.linux import syscalls as sc
from rootless.errors import RootlessError


def build_env(process: dict, listen_fds: int = 0) -> dict:
    """process.env as a dict (the last of duplicate keys wins, as with execve callers)."""
    env = {}
    for item in process.get("env", []):
        key, _, value = item.partition("=")
        env[key] = value
    if listen_fds:
        # Socket activation: the fds are 3.. in the container too, and its PID 1 is the listener.
        env["LISTEN_FDS"] = str(listen_fds)
        env["LISTEN_PID"] = "1"
    return env


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """The home directory of `uid` in the container's passwd file, "/" when it is not listed
    (runc's default user). Read as bytes: no codec may load after pivot_root."""
    try:
        with open(passwd, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return "/"
    for line in lines:
        fields = line.strip().split(b":")
        if len(fields) >= 6 and fields[2].isdigit() and int(fields[2]) == uid:
            return fields[5].decode(errors="surrogateescape")
    return "/"


def find_executable(name: str, env: dict, cwd: str = "/") -> str:
    """The program execve will run, looked up like runc does (PATH for bare names). Raises the
    message podman maps to exit 127."""
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(cwd, name)
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            raise RootlessError(f'exec: "{name}": stat {path}: {err.strerror.lower()}') from None
        if stat.S_ISDIR(mode):
            raise RootlessError(f'exec: "{name}": is a directory')
        if not mode & 0o111:
            # Go's LookPath (runc's) refuses it, so create fails, not start; podman maps
            # "permission denied" to exit 126.
            raise RootlessError(f'exec: "{name}": permission denied')
        return path
    # No PATH (or an empty one) searches nowhere, as Go's exec.LookPath in runc's init does:
    # a bare name then fails in runc's words.
    search = env.get("PATH") or ""
    for directory in search.split(":") if search else ():
        candidate = os.path.join(directory or ".", name)
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and mode & 0o111:
            return candidate
    raise RootlessError(f'exec: "{name}": executable file not found in $PATH')


def apply_rlimits(rlimits: list[dict]) -> None:
    for entry in rlimits:
        name = entry["type"]
        number = sc.RLIMITS.get(name)
        if number is None:
            raise RootlessError(f"config.json: process.rlimits: unknown type {name}")
        sc.setrlimit(number, entry["soft"], entry["hard"],
                     what=f"setrlimit {name} soft={entry['soft']} hard={entry['hard']}")


def _write_proc(path: str, value: str, what: str) -> None:
    try:
        procfs.write_once(path, value)
    except OSError as err:
        raise RootlessError(f"{what}: write {path}: {err.strerror}") from None


def sysctl_path(key: str) -> str:
    parts = key.replace(".", "/").split("/")
    if not key or any(p in ("", "..") for p in parts):
        raise RootlessError(f"config.json: linux.sysctl: invalid key {key!r}")
    return "/proc/sys/" + "/".join(parts)


def apply_sysctls(sysctls: dict) -> None:
    for key, value in sysctls.items():
        _write_proc(sysctl_path(key), value, f"sysctl {key}={value}")


def set_oom_score_adj(value: int) -> None:
    _write_proc("/proc/self/oom_score_adj", str(value), f"process.oomScoreAdj {value}")


# linux/capability.h by number, as runc's capability library names them. python-prctl's names
# stop at 39 and include flags (CAP_EFFECTIVE is 0), so they are not used.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")
_CAP_NUMBERS = {name: number for number, name in enumerate(CAPABILITIES)}


def kernel_last_cap() -> int:
    """/proc/sys/kernel/cap_last_cap, probed: the bounding set must shed every capability the
    kernel has, named or not."""
    last = len(CAPABILITIES) - 1
    while last > 0 and not sc.capbset_knows(last):
        last -= 1
    while sc.capbset_knows(last + 1):
        last += 1
    return last


def capability_numbers(names: list[str], where: str, warn, last: int | None = None) -> list[int]:
    """Numbers of the names the kernel knows; the others are ignored with a warning (current
    runc's rule for a capability the kernel lacks)."""
    last = kernel_last_cap() if last is None else last
    numbers = []
    for name in names:
        number = _CAP_NUMBERS.get(name.upper())
        if number is None or number > last:
            warn(f"process.capabilities.{where}: unknown capability {name}, ignored")
            continue
        numbers.append(number)
    return numbers


def drop_bounding_set(caps: dict, warn) -> None:
    last = kernel_last_cap()
    keep = set(capability_numbers(caps.get("bounding", []), "bounding", warn, last))
    for number in range(last + 1):
        if number not in keep:
            sc.capbset_drop(number)


def set_capabilities(caps: dict, warn, note) -> None:
    """Permitted, effective and inheritable in one capset, then the ambient set."""
    last = kernel_last_cap()
    sets = [set(capability_numbers(caps.get(field, []), field, warn, last))
            for field in ("effective", "permitted", "inheritable")]
    sc.capset(*sets)
    sc.ambient_clear()
    for name in caps.get("ambient", []):
        try:
            for number in capability_numbers([name], "ambient", warn):
                sc.ambient_raise(number)
        except RootlessError as err:
            # runc goes on quietly: `runc spec` lists ambient capabilities without inheritable
            # ones, and the kernel raises only what is both permitted and inheritable.
            note(f"process.capabilities.ambient: {name} not raised (it must be permitted and inheritable): {err}")


def become_namespace_root() -> None:
    """uid/gid 0 of the user namespace just entered, when mapped: what is made then belongs to
    the container's root."""
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError:
        pass  # maps without a container root: stay as mapped


def switch_user(user: dict, keep_caps: bool) -> None:
    """setgroups, setresgid, setresuid: keepcaps holds the permitted set across the uid change
    so the configured capabilities can still be set after it."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = user.get("additionalGids", [])
    if keep_caps:
        sc.set_keepcaps(True)
    try:
        os.setgroups(groups)
    except PermissionError:
        # setgroups is denied in a user namespace mapped by a single-ID map: only say so when
        # groups were asked for.
        if groups:
            raise RootlessError("setgroups: not permitted in this user namespace (single-ID mapping: "
                                "install newuidmap/newgidmap and add /etc/subgid ranges)") from None
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as err:
        raise RootlessError(f"set user {uid}:{gid}: {err.strerror} (is it mapped in the user namespace?)") from None
    if keep_caps:
        sc.set_keepcaps(False)
    if "umask" in user:
        os.umask(user["umask"])


def become(proc: dict, load_seccomp, warnings: list, notes: list, listen_fds: int = 0) -> tuple[str, dict]:
    """The last steps before execve, shared by the container init and `exec`, in runc's order.
    load_seccomp: loads the container's filter, or None. Returns the executable and the
    environment for execve."""
    # rlimits while still root in the namespace: raising a hard limit needs CAP_SYS_RESOURCE.
    apply_rlimits(proc.get("rlimits", []))
    # seccomp without noNewPrivileges must load while we still hold CAP_SYS_ADMIN in the user
    # namespace; the calls that follow then run under the filter too (runc's order).
    no_new_privs = bool(proc.get("noNewPrivileges"))
    if load_seccomp is not None and not no_new_privs:
        load_seccomp()
    # HOME, when process.env has none (or an empty one), is the user's home in the container's
    # passwd, as runc sets it; read while the file is still readable as the namespace's root.
    env = build_env(proc, listen_fds)
    if not env.get("HOME"):
        env["HOME"] = home_of(proc.get("user", {}).get("uid", 0))
    # The user and its capabilities: the bounding set shrinks while we may (CAP_SETPCAP),
    # keepcaps carries the permitted set over the uid change.
    # No process.capabilities means no capability at all, as in runc (an empty set each).
    caps = proc.get("capabilities") or {}
    drop_bounding_set(caps, warnings.append)
    switch_user(proc.get("user", {}), keep_caps=True)
    set_capabilities(caps, warnings.append, notes.append)
    cwd = proc.get("cwd", "/")
    try:
        os.chdir(cwd)
    except OSError as err:
        raise RootlessError(f"chdir to cwd {cwd!r}: {err.strerror}") from None
    executable = find_executable(proc["args"][0], env, cwd)
    if no_new_privs:
        sc.set_no_new_privs()
        # With no_new_privs the filter needs no privilege: load it last, as close to the
        # container's program as errors can still reach the caller.
        if load_seccomp is not None:
            load_seccomp()
    attrs.apply_exec_labels(proc)  # LSM labels take effect at the execve
    return executable, env


def pass_fds(count: int, close_from: int | None = None, on_exec: bool = False) -> None:
    """Fds 0..count-1 (those that are open) reach the next program; every fd from close_from
    (default: count) on is closed, or with on_exec closed by the execve (so that a pipe that
    reports errors stays open until the execve succeeds)."""
    for fd in range(count):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    sc.close_range(count if close_from is None else close_from, on_exec=on_exec)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ and catches SIGINT: the container gets the defaults."""
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
