"""The cases that diverge today and the deliberate differences, each in one place.

KNOWN: case -> (reason, part of issue 10). Each is an xfail(strict=True): when a fix lands
the case XPASSes, the run fails, and the entry must go. The parts are the helpers' shares of
issue 10: "validation/messages", "filesystem" (mounts, devices, masked paths, tmpfs, /proc),
"process" (terminal, HOME, spec --rootless, seccomp, hooks, memoryPolicy, execCPUAffinity),
and "other" for what none of them covers.

DELIBERATE: case -> (reason, check). The case asserts rootless's own behaviour through
check(rootless_seen, runc_seen); docs/differences-from-runc.md ("Found by the differential
harness") says why.
"""

import os
from collections.abc import Callable

import pytest

from helpers.differential import compare

KNOWN: dict[str, tuple[str, str]] = {}


def one_line_error(rootless: dict, runc: dict) -> None:
    """A usage error: the same exit status as runc's, nothing on stdout, one line on stderr
    (runc prints its whole help text on stdout)."""
    for key, seen in rootless.items():
        if key.startswith("_") or not isinstance(seen, tuple):
            continue
        status, stderr_empty, stdout = seen
        assert status == runc[key][0] and status != 0, (key, seen, runc[key])
        assert not stderr_empty and stdout == "", (key, seen)
        assert rootless[f"_{key}"].count("\n") == 0, rootless[f"_{key}"]


def run_usage_error(rootless: dict, runc: dict) -> None:
    assert rootless["exit"] == runc["exit"] != 0
    assert rootless["stdout"] == "" and not rootless["stderr_empty"] and "\n" not in rootless["_stderr"]


def works_without_cgroup(rootless: dict, runc: dict) -> None:
    """rootless does the verb's job without a cgroup where runc, rootless on cgroup v1, has none
    to read (runc exits 1)."""
    steps = [key for key in rootless if not key.startswith("_")]
    status, _, stdout = rootless[steps[1]]
    assert status == 0 and runc[steps[1]][0] == 1, (rootless, runc)
    if "kill" in steps[1]:
        assert rootless[steps[-1]] == "stopped", rootless
    else:
        assert "N" in stdout  # a PID


def runs_with_warning(rootless: dict, runc: dict) -> None:
    """linux.resources or cgroupsPath without a cgroup to apply them: rootless runs the
    container (README: no cgroup is made or limited); runc fails."""
    assert runc["exit"] == 1 and rootless["exit"] == 0


def stdout_is(expected: str, crlf_too: bool = False) -> Callable[[dict, dict], None]:
    def check(rootless: dict, runc: dict) -> None:
        stdout = rootless["stdout"].replace("\r\n", "\n") if crlf_too else rootless["stdout"]
        assert rootless["exit"] == 0 and stdout == expected, rootless
    return check


def _stdio_and_cgroupfs_aside(seen: dict) -> dict:
    """The report without the two parts the checks below look at on their own: fds 0-2, and
    the mounts at and below /sys/fs/cgroup."""
    out = dict(seen)
    if "fds" in out:
        out["fds"] = "\n".join(line for line in out["fds"].splitlines() if line.split(" ", 1)[0] not in ("0", "1", "2"))
    for key in ("mounts", "mount_order"):
        if key in out:
            out[key] = "\n".join(line for line in out[key].splitlines() if not line.startswith("/sys/fs/cgroup"))
    return out


def stdio_and_cgroupfs_our_own(rootless: dict, runc: dict) -> None:
    """runc's report in every other respect (the order of mounts included), and rootless's own
    stdio and /sys/fs/cgroup: the process has the caller's files as fds 0-2 (the harness's
    /dev/null and captured output files), not pipes; on a hybrid host /sys/fs/cgroup is the
    host's tmpfs, read-only as the config's "ro" asks, with its cgroup2 'unified' tree."""
    if "fds" in rootless:
        assert rootless["fds"].splitlines()[:3] == ["0 /dev/null", "1 <host-file>", "2 <host-file>"], rootless
        assert runc["fds"].splitlines()[:3] == ["0 pipe:[N]", "1 pipe:[N]", "2 pipe:[N]"], runc
    hybrid = os.path.isdir("/sys/fs/cgroup/unified") and not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    for key in ("mounts", "mount_order") if hybrid else ():
        if key in rootless:
            lines = rootless[key].splitlines()
            assert any(line.startswith("/sys/fs/cgroup ro,") and " tmpfs " in line for line in lines), lines
            assert any(line.startswith("/sys/fs/cgroup/unified ro,") for line in lines), lines
    differences = compare(_stdio_and_cgroupfs_aside(runc), _stdio_and_cgroupfs_aside(rootless))
    assert not differences, "\n".join(differences)


def starts_without_pid_namespace(rootless: dict, runc: dict) -> None:
    """No PID namespace: the container runs in the caller's (its shell is not PID 1), with the
    host's procfs bound as runc binds /sys; runc cannot mount a procfs for a PID namespace its
    user namespace does not own."""
    assert rootless["exit"] == 0 and rootless["stdout"] == "not-pid1\n", rootless
    assert runc["exit"] == 1, runc


DELIBERATE: dict[str, tuple[str, Callable[[dict, dict], None]]] = {
    "default": ("the whole report: stdio and /sys/fs/cgroup as below", stdio_and_cgroupfs_our_own),
    "default-fds": ("without a terminal, a foreground `run` or `exec` hands the caller's own fds to the process, as "
                    "runc does for create, run -d and exec -d (what podman, conmon and containerd use); runc's "
                    "foreground run and exec give it pipes and copy them", stdio_and_cgroupfs_our_own),
    "exec-probe-fds": ("as default-fds", stdio_and_cgroupfs_our_own),
    "root-default-fds": ("as default-fds", stdio_and_cgroupfs_our_own),
    "default-mounts": ("/sys/fs/cgroup on a hybrid host: the host's tmpfs read-only (the config says ro) with its "
                       "cgroup2 'unified' tree; runc mounts a new writable tmpfs owned by the caller and leaves "
                       "'unified' out", stdio_and_cgroupfs_our_own),
    "default-mount_order": ("as default-mounts; the order of every other mount is runc's", stdio_and_cgroupfs_our_own),
    "root-default-mounts": ("as default-mounts", stdio_and_cgroupfs_our_own),
    "root-default-mount_order": ("as default-mount_order", stdio_and_cgroupfs_our_own),
    "ns-without-pid": ("no PID namespace: the container shares the caller's and sees the host's procfs; runc fails "
                       "to mount a procfs there", starts_without_pid_namespace),
    "state-no-id": ("a usage error is one line on stderr; runc prints its help text on stdout", one_line_error),
    "create-no-id": ("as state-no-id", one_line_error),
    "global-unknown-flag": ("as state-no-id", one_line_error),
    "run-preserve-fds-bad": ("as state-no-id", run_usage_error),
    "exec-env-mixed-flag-forms": ("`exec -e A=1 --env B=2` works; runc's flag parser refuses two forms of one flag",
                                  stdout_is("bar /root\n")),
    "kill-all": ("`kill -a` signals every process of the container without a cgroup; runc 1.1.5 needs a cgroup "
                 "it cannot have here", works_without_cgroup),
    "kill-all-long": ("as kill-all", works_without_cgroup),
    "ps-table": ("`ps` finds the container's processes without a cgroup; runc fails without one", works_without_cgroup),
    "ps-json": ("as ps-table", works_without_cgroup),
    "ps-created": ("as ps-table", works_without_cgroup),
    "resources-memory-limit": ("no cgroup is made or limited (README): the container runs, with a warning",
                               runs_with_warning),
    "cgroupsPath": ("as resources-memory-limit", runs_with_warning),
    "mount-tmpfs-mode-700": ("an explicit mode= of a tmpfs is kept; runc 1.1.5 gives the directory's mode",
                             stdout_is("700 root\n")),
    "hook-failing-startContainer": ("a failing startContainer hook stops the container before poststart, as the "
                                    "spec asks; runc 1.1.5 still runs the poststart hooks",
                                    lambda rootless, runc: None if rootless["hooks"] == "<no hook ran>" else
                                    pytest.fail(rootless["hooks"])),
    "terminal-consoleSize": ("a foreground run gives the pty the caller's terminal size before the process "
                             "starts; runc sets process.consoleSize first and the caller's size later, so the "
                             "process sees either (a race)",
                             lambda rootless, runc: None if rootless["output"].replace("\r", "") == "24 80\n" else
                             pytest.fail(repr(rootless["output"]))),
    "exec-tty-consoleSize-foreground-at-start": (
        "a foreground exec -t gives the pty the caller's terminal size before the process starts; runc's "
        "exec sizes it by the container's process.consoleSize and the caller's size later (a race)",
        stdout_is("24 80\n", crlf_too=True)),
    "exec-tty-process-consoleSize-foreground-at-start": (
        "as exec-tty-consoleSize-foreground-at-start, with the consoleSize of --process FILE",
        stdout_is("24 80\n", crlf_too=True)),
    "terminal-run-to-files": ("a terminal: true foreground run without a terminal of the caller's proxies the "
                              "pty to stdout; runc fails opening /dev/tty (whether the pty keeps ONLCR is the terminal "
                              "item of issue 10)", stdout_is("a\nb\n", crlf_too=True)),
}
