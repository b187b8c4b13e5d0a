"""rootless under containerd, as Kubernetes reaches it: containerd's runc shim
(io.containerd.runc.v2) with rootless as its runtime binary, driven with `ctr` against a
containerd of the tests' own (helpers.containerd). Every case runs with runc too, on the same
containerd and image, and expects what runc gives; and with rootless under containerd's
rootless mode (RootlessKit, as the test user), where runc cannot run on this host (ctr's
default spec asks for cpu shares, and a rootless runc without a cgroup refuses: "cannot set cpu
limit: container could not join or create cgroup").

containerd's shim reads the runtime's words: `kill` errors containing "container not running"
(or "no such process") become "process already finished: not found", "does not exist" becomes
"no such container: not found" (and a `delete` that finds nothing succeeds), anything else
"unknown error after kill"; create, start and exec failures show the last error line of the
runtime's JSON `--log` file. The CRI plugin (so the kubelet) treats "not found" as "already
stopped" when it stops a container; "unknown" fails the stop.
"""

import os
import re
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from helpers.containerd import CONTAINERD, CTR, IMAGE, ROOTLESSKIT, RUNTIME_TYPE, running_containerd, write_config
from helpers.runtime import RUNC, Runtime
from helpers.terminal import HeldTerminal

PACKAGING = Path(__file__).resolve().parents[2] / "packaging" / "containerd"
RUNTIMES = ("rootless", "runc")
# (containerd's mode, the runtime): runc cannot run under the rootless containerd here.
SETUPS = (("root", "rootless"), ("root", "runc"), ("rootlesskit", "rootless"))


def _need(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the tests start containerd as root, or as the test user through setpriv")
    for tool in tools:
        if not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} is missing: install Debian's containerd and rootlesskit (tests/run does)")


@pytest.fixture(scope="module")
def containerd(scratch_root, busybox_rootfs, rootless_bin):
    """containerd as root, as on a Kubernetes node."""
    _need(CONTAINERD, CTR)
    yield from running_containerd(scratch_root, busybox_rootfs)


@pytest.fixture(scope="module")
def user_containerd(scratch_root, busybox_rootfs, rootless_bin, test_user):
    """containerd in its rootless mode, as the test user."""
    _need(CONTAINERD, CTR, ROOTLESSKIT)
    yield from running_containerd(scratch_root, busybox_rootfs, user=test_user)


@pytest.fixture(params=SETUPS, ids=["-".join(setup) for setup in SETUPS])
def ctr(request, rootless_bin):
    """(containerd, the `ctr run` flags for this runtime); what the test left is removed."""
    mode, runtime = request.param
    containerd = request.getfixturevalue("containerd" if mode == "root" else "user_containerd")
    yield containerd, containerd.runtime_flags(rootless_bin if runtime == "rootless" else RUNC)
    containerd.remove_all()


def _id() -> str:
    return Runtime.new_id("ctr")


def _wait_status(containerd, task: str, status: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        seen = containerd.status(task)
        if seen == status or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def _run_detached(containerd, flags, task: str, *args: str) -> None:
    result = containerd.ctr("run", "-d", *flags, IMAGE, task, *args)
    assert result.returncode == 0, result.stderr
    assert _wait_status(containerd, task, "RUNNING") == "RUNNING"


def test_run_exit_code_and_output(ctr):
    containerd, flags = ctr
    task = _id()
    result = containerd.ctr("run", "--rm", *flags, IMAGE, task,
                            "sh", "-c", "echo out; echo err >&2; id -u; cat /proc/self/uid_map; exit 3")
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["out", "0"]
    # As root: no user namespace. Under RootlessKit: its map, the user and its subordinate range.
    maps = [line.split() for line in lines[2:]]
    if containerd.user is None:
        assert maps == [["0", "0", "4294967295"]]
    else:
        assert maps[0] == ["0", str(containerd.user.uid), "1"] and len(maps) == 2, maps
    assert result.stderr == "err\n"
    assert task not in containerd.ctr("container", "ls", "-q").stdout.split()


def test_detached_exec_ps_kill_delete(ctr):
    containerd, flags = ctr
    task = _id()
    _run_detached(containerd, flags, task, "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.1; done")

    result = containerd.ctr("task", "exec", "--fifo-dir", containerd.fifo_dir, "--exec-id", "e1", task, "sh", "-c", "echo inside $$; exit 4")
    assert result.returncode == 4, result.stderr
    assert result.stdout.startswith("inside ") and result.stderr == ""
    assert containerd.ctr("task", "exec", "--fifo-dir", containerd.fifo_dir, "--detach", "--exec-id", "e2", task, "sleep", "600").returncode == 0

    listed = containerd.ctr("task", "ps", task)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert rows[0].split() == ["PID", "INFO"]
    init_pid = containerd.tasks()[task][0]
    assert str(init_pid) in [row.split()[0] for row in rows[1:]]
    assert any("e2" in row for row in rows[1:]), rows  # the shim names the exec's PID by its exec id

    assert containerd.ctr("task", "kill", task).returncode == 0  # SIGTERM
    assert _wait_status(containerd, task, "STOPPED") == "STOPPED"
    deleted = containerd.ctr("task", "delete", task)
    assert deleted.returncode == 0, deleted.stderr
    assert "exit code 7" in deleted.stderr  # ctr's warning carries the init's exit status
    assert task not in containerd.ctr("task", "ls", "-q").stdout.split()
    assert containerd.ctr("container", "rm", task).returncode == 0
    assert not (containerd.runc_root / "default" / task).exists()


def test_terminal(ctr):
    containerd, flags = ctr
    term = HeldTerminal(30, 100)
    try:
        proc = subprocess.Popen(containerd.ctr_command("run", "--rm", "-t", *flags, IMAGE, _id(),
                                                       "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 5"),
                                stdin=term.slave, stdout=term.slave, stderr=term.slave, start_new_session=True,
                                env=containerd.env())
        assert proc.wait(timeout=60) == 5
        assert term.read_until(b"both-ttys", timeout=10), term.seen
    finally:
        term.close()
    assert b"/dev/pts/0" in term.seen


# What containerd says when the runtime refuses, as runc's words make it say: (setup, command,
# exit status, words expected in ctr's stderr). The same for both runtimes.
def _exited(containerd, flags, task):
    _run_detached(containerd, flags, task, "sleep", "600")
    assert containerd.ctr("task", "kill", "-s", "KILL", task).returncode == 0
    assert _wait_status(containerd, task, "STOPPED") == "STOPPED"


def _vanished(containerd, flags, task):
    """A running task whose runtime container was deleted behind the shim's back (what an
    operator's `runc delete -f` or a lost state directory leaves)."""
    binary = flags[flags.index("--runc-binary") + 1]
    _run_detached(containerd, flags, task, "sleep", "600")
    deleted = containerd.run(binary, "--root", containerd.runc_root / "default", "delete", "-f", task)
    assert deleted.returncode == 0, deleted.stderr
    assert _wait_status(containerd, task, "STOPPED") == "STOPPED"


def _running(containerd, flags, task):
    _run_detached(containerd, flags, task, "sleep", "600")


def _none(containerd, flags, task):
    pass


ERROR_CASES = {
    # kill: checkKillError in containerd's pkg/process
    "kill-exited": (_exited, ("task", "kill", "ID"), 1, "process already finished: not found"),
    "kill-all-exited": (_exited, ("task", "kill", "--all", "ID"), 0, ""),
    "kill-vanished": (_vanished, ("task", "kill", "ID"), 1, "no such container: not found"),
    # delete: "does not exist" is success
    "delete-vanished": (_vanished, ("task", "delete", "ID"), 0, ""),
    # ps (`runc ps --format json`): no process, no error
    "ps-exited": (_exited, ("task", "ps", "ID"), 0, ""),
    # create, start and exec failures: the last error of the runtime's JSON log
    "run-missing": (_none, ("run", "FLAGS", IMAGE, "ID", "nosuch"), 1,
                    'OCI runtime create failed: .*exec: "nosuch": executable file not found in \\$PATH'),
    "run-not-executable": (_none, ("run", "FLAGS", IMAGE, "ID", "/etc/passwd"), 1,
                           'OCI runtime create failed: .*exec: "/etc/passwd": permission denied'),
    "exec-missing": (_running, ("task", "exec", "FIFO", "--exec-id", "x", "ID", "nosuch"), 1,
                     'OCI runtime exec failed: .*exec: "nosuch": executable file not found in \\$PATH'),
    "exec-not-executable": (_running, ("task", "exec", "FIFO", "--exec-id", "x", "ID", "/etc/passwd"), 1,
                            'OCI runtime exec failed: .*exec: "/etc/passwd": permission denied'),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_reach_containerd_as_runcs(ctr, case):
    containerd, flags = ctr
    setup, command, status, words = ERROR_CASES[case]
    task = _id()
    setup(containerd, flags, task)
    argv = []
    for arg in command:
        argv += {"FLAGS": flags, "FIFO": ["--fifo-dir", containerd.fifo_dir], "ID": [task]}.get(arg, [arg])
    result = containerd.ctr(*argv)
    assert result.returncode == status, result.stderr
    if words:
        assert re.search(words, result.stderr), result.stderr
        assert "unknown error after kill" not in result.stderr
    else:
        assert "level=error" not in result.stderr and not result.stderr.startswith("ctr:"), result.stderr


def test_stopped_container_verbs_as_runc(runtime):
    """`kill --all` and `ps` of a stopped container succeed in runc (containerd's shim sends
    `kill --all ID 9` after the init of a container without its own PID namespace exits, and
    `ctr task ps` of an exited task lists nothing); a plain `kill` says "container not running"."""
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is missing (tests/run installs runc)")
    seen = {}
    binaries = {"rootless": runtime.binary, "runc": RUNC}
    for name in RUNTIMES:
        runtime.binary = binaries[name]
        overrides = {}
        if name == "runc" and runtime.rootless:  # runc alone cannot map more than the caller
            overrides = {"linux": {"uidMappings": [{"containerID": 0, "hostID": runtime.user.uid, "size": 1}],
                                   "gidMappings": [{"containerID": 0, "hostID": runtime.user.gid, "size": 1}]}}
        cid = runtime.new_id()
        assert runtime.run("run", "-d", "--bundle", runtime.bundle(["true"], **overrides), cid).returncode == 0
        runtime.wait_for_status(cid, "stopped")
        results = [runtime.run(*args) for args in (("kill", "--all", cid, "9"), ("ps", "--format", "json", cid),
                                                   ("ps", cid), ("kill", cid, "9"))]
        seen[name] = [(r.returncode, r.stdout.strip().splitlines()[:1], "container not running" in r.stderr)
                      for r in results]
        assert runtime.run("delete", cid).returncode == 0
    assert seen["rootless"] == seen["runc"]
    assert [status for status, _, _ in seen["rootless"]] == [0, 0, 0, 1]


def test_cri_handler_fragment_merges_into_containerd(containerd, rootless_bin):
    """packaging/containerd's fragment is a config containerd merges (`config dump` of a config
    that imports it), its handler is the RuntimeClass's, and a container runs through the shim
    with the handler's options (BinaryName pointed at the installed rootless; SystemdCgroup
    only where systemd runs: tests/vm)."""
    fragment = PACKAGING / "rootless-runtime.toml"
    with open(fragment, "rb") as f:
        handlers = tomllib.load(f)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    manifest = (PACKAGING / "runtimeclass.yaml").read_text().splitlines()
    assert "kind: RuntimeClass" in manifest
    handler = next(line.split(":", 1)[1].strip() for line in manifest if line.startswith("handler:"))
    assert list(handlers) == [handler] == ["rootless"]
    options = handlers[handler]["options"]
    assert handlers[handler]["runtime_type"] == RUNTIME_TYPE
    assert options["BinaryName"].endswith("/rootless")

    folder = containerd.folder / "dump"
    folder.mkdir()
    dumped = subprocess.run([CONTAINERD, "--config", str(write_config(folder, (fragment,), cri=True)), "config", "dump"],
                            capture_output=True, text=True, timeout=60)
    assert dumped.returncode == 0, dumped.stderr
    section = dumped.stdout.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rootless]', 1)[1]
    assert f'runtime_type = "{RUNTIME_TYPE}"' in section.split("[plugins", 1)[0]
    assert f'BinaryName = "{options["BinaryName"]}"' in section

    task = _id()
    flags = containerd.runtime_flags(rootless_bin)
    flags[flags.index("--runtime") + 1] = handlers[handler]["runtime_type"]
    result = containerd.ctr("run", "--rm", *flags, IMAGE, task, "sh", "-c", "cat /proc/1/cmdline; echo; exit 0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sh")
