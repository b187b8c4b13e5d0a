"""Carry out an IdMapPlan for a process that has just unshared its user namespace and waits.

"helper": newuidmap and newgidmap (setuid root, from the Debian package uidmap) run side by
side, each with its stdout and stderr on a pipe so a failure reports what the helper said.
"direct": the parent writes /proc/PID/setgroups, uid_map and gid_map itself.

No subprocess: importing it costs milliseconds on every `rootless create`; os.posix_spawnp,
os.pipe and os.waitpid are all that is needed.
"""

import os

from idmap.plan import IdMapError, IdMapPlan
from rootless.linux import procfs

EXTRA_DIRS = ("/usr/bin", "/usr/sbin", "/bin")  # PATH of a service or a sudo may lack them


def find_helper(name: str) -> str | None:
    """The executable `name` on PATH or in EXTRA_DIRS, or None. A name with a slash is taken
    as a path. Empty PATH entries (the current directory) are skipped: a setuid helper is never
    looked up relative to wherever the runtime was started."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    dirs = [d for d in os.environ.get("PATH", "").split(":") if d.startswith("/")]
    for folder in dict.fromkeys(dirs + list(EXTRA_DIRS)):
        path = f"{folder}/{name}"
        if os.access(path, os.X_OK):
            return path
    return None


def apply_idmap_plan(plan: IdMapPlan, pid: int, *, proc: str = "/proc", newuidmap: str = "newuidmap",
                     newgidmap: str = "newgidmap") -> None:
    if plan.method == "helper":
        _run_helpers([_helper_argv(newuidmap, pid, plan.uid_mappings),
                      _helper_argv(newgidmap, pid, plan.gid_mappings)])
    elif plan.method == "direct":
        if plan.deny_setgroups:
            # Must precede gid_map: the kernel lets an unprivileged writer set gid_map only once
            # setgroups is denied. Kernels before 3.19 have no such file and no such rule.
            _write(f"{proc}/{pid}/setgroups", "deny", missing_ok=True)
        _write(f"{proc}/{pid}/uid_map", _map_text(plan.uid_mappings))
        _write(f"{proc}/{pid}/gid_map", _map_text(plan.gid_mappings))
    else:
        raise IdMapError(f"unknown ID-map method {plan.method!r}")


def _map_text(mappings) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def _write(path: str, text: str, missing_ok: bool = False) -> None:
    try:
        procfs.write_once(path, text)
    except OSError as err:
        if missing_ok and isinstance(err, FileNotFoundError):
            return
        raise IdMapError(f"write `{path}`: {err.strerror}") from None


def _helper_argv(name: str, pid: int, mappings) -> list[str]:
    argv = [name, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    return argv


def _run_helpers(commands: list[list[str]]) -> None:
    """Start every command, then wait for each; one IdMapError naming every failure. Each
    child writes only to its own pipe, so reading the pipes one after another cannot block."""
    started, failures = [], []
    try:
        for argv in commands:
            started.append(_start(argv))
    finally:
        # Reaped even when a later start failed: no helper outlives this call.
        for argv, child, read_fd in started:
            failure = _finish(argv, child, read_fd)
            if failure:
                failures.append(failure)
    if failures:
        raise IdMapError("; ".join(failures))


def _start(argv: list[str]) -> tuple[list[str], int, int]:
    read_fd, write_fd = os.pipe()  # both close-on-exec; dup2 gives the child its own copies
    try:
        path = find_helper(argv[0]) or argv[0]
        child = os.posix_spawnp(path, argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, write_fd, 1), (os.POSIX_SPAWN_DUP2, write_fd, 2)])
    except OSError as err:
        os.close(read_fd)
        hint = " (Debian package uidmap)" if isinstance(err, FileNotFoundError) else ""
        raise IdMapError(f"{' '.join(argv)}: {err.strerror}{hint}") from None
    finally:
        os.close(write_fd)
    return argv, child, read_fd


def _finish(argv: list[str], child: int, read_fd: int) -> str | None:
    """Read the child's output to end of file, reap it; an error line if it failed."""
    chunks = []
    try:
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    said = "; ".join(line.strip() for line in b"".join(chunks).decode(errors="replace").splitlines() if line.strip())
    outcome = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
    return f"{' '.join(argv)}: {outcome}" + (f": {said}" if said else "")
