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

from collections.abc import Callable

import pytest

EXEC_255 = ("exec that fails before the command runs exits 255 in runc (since 1.1.0), 1 in rootless",
            "validation/messages")
OWNER = ("`state` prints owner \"\" in runc (it fills the owner only for `list`); rootless prints the user name",
         "validation/messages")
STDIO_PIPES = ("without a terminal, a foreground `run` and `exec` in runc give the process pipes (stdin too) "
               "and copy them; rootless hands the caller's own fds to the process", "process")

KNOWN: dict[str, tuple[str, str]] = {
    "default": ("the whole report: HOME, stdio pipes, /sys/fs/cgroup and the mount order (each below)",
                "process, filesystem"),
    "default-mounts": ("/sys/fs/cgroup on a hybrid host: runc mounts a new read-write tmpfs (uid=caller) under "
                       "read-only cgroup binds and leaves out the cgroup2 'unified' hierarchy; rootless binds the "
                       "host's tmpfs read-only and includes 'unified'", "filesystem"),
    "default-mount_order": ("the order of mounts: runc binds devices as null, random, full, tty, zero, urandom and "
                            "applies readonlyPaths before maskedPaths; rootless binds null, zero, full, random, "
                            "urandom, tty and masks first (and the /sys/fs/cgroup difference above)", "filesystem"),
    "default-fds": STDIO_PIPES,
    "exec-probe-fds": STDIO_PIPES,
    "env-no-path": ("no PATH in process.env: runc cannot resolve a relative args[0] (exit 1, 'executable file not "
                    "found in $PATH'); rootless searches a default PATH", "process"),
    "env-no-path-relative-args": ("as env-no-path", "process"),
    "annotations": OWNER,
    "state-created": OWNER,
    "state-running": OWNER,
    "state-stopped": OWNER,
    "ns-without-pid": ("no PID namespace: runc fails to mount a new procfs (the host's PID namespace is not the "
                       "user's); rootless starts the container", "filesystem"),
    "execCPUAffinity-final": ("process.execCPUAffinity is accepted but not applied (runc 1.2 sets the final CPU "
                              "set)", "process"),
    "list-empty-json": ("`list -f json` with no container: runc prints null, rootless []", "validation/messages"),
    "list-empty-table": ("`list` table padding: runc's tabwriter pads columns to 12 characters, rootless to the "
                         "widest cell plus 3", "validation/messages"),
    "kill-signal-zero": ("`kill ID 0`: runc sends signal 0 (exit 0: the container is alive); rootless refuses "
                         "'invalid signal 0'", "validation/messages"),
    "global-unknown-verb": ("an unknown command exits 3 in runc ('No help topic'), 1 in rootless",
                            "validation/messages"),
    "exec-user-name": EXEC_255,
    "exec-no-args": EXEC_255,
    "exec-tty-stty": ("exec -t: rootless's pty keeps ONLCR (runc clears it) and has no window size (runc sets "
                      "the caller's 24x80)", "process"),
    "spec": ("`spec` against current runc's template: hostname 'rootless' (runc's 'runc'), a cgroup namespace "
             "(current runc adds it on cgroup v2 hosts only), no /sys/devices/virtual/tpm masked, no deny-all "
             "device rule", "process"),
    "spec-bundle": ("as spec", "process"),
    "spec-rootless": ("as spec, and no uidMappings/gidMappings for the caller (size 1), and the network "
                      "namespace kept (runc --rootless drops it)", "process"),
    "features-top-level-keys": ("`features` lacks potentiallyUnsafeConfigAnnotations (runc 1.2)",
                                "validation/messages"),
    "features-mount-options": ("`features` lacks acl, noacl, iversion, noiversion, ratime, rnorelatime, "
                               "rnostrictatime and symfollow, which runc lists", "validation/messages"),
    "hook-state-on-stdin": ("the state a poststart hook reads: runc 1.1.5 says status 'created', rootless "
                            "'running'", "process"),
    "root-default-mounts": ("as default-mounts (as root)", "filesystem"),
    "root-default-mount_order": ("as default-mount_order (as root)", "filesystem"),
    "root-default-fds": STDIO_PIPES,
}


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


DELIBERATE: dict[str, tuple[str, Callable[[dict, dict], None]]] = {
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
    "terminal-run-to-files": ("a terminal: true foreground run without a terminal of the caller's proxies the "
                              "pty to stdout; runc fails opening /dev/tty (whether the pty keeps ONLCR is the terminal "
                              "item of issue 10)", stdout_is("a\nb\n", crlf_too=True)),
}
