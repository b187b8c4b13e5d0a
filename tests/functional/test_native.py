"""The runtime's two ways to make system calls (rootless/linux/syscalls.py): the extension
module rootless/linux/_native.c, and the ctypes fallback that ROOTLESS_NO_NATIVE=1 forces. The
same bundles run both ways must give containers that see the same things: hostname, domain
name, lo, capabilities, rlimits, personality, seccomp, read-only paths, the terminal.

(The whole suite can also run on the fallback: `ROOTLESS_NO_NATIVE=1 tests/run ...` passes the
variable to every runtime call, tests/helpers/users.clean_env.)"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers.bundle import DEFAULT_CAPS, make_config
from helpers.runtime import Runtime
from helpers.terminal import HeldTerminal
from test_container_view import cap_mask
from test_io import ConsoleReceiver

BACKENDS = {"native": {}, "ctypes": {"ROOTLESS_NO_NATIVE": "1"}}


def mapped_objects(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_init_runs_on_the_backend_asked_for(runtime: Runtime, backend: str) -> None:
    """A startContainer hook keeps the created init in Python until `start` (rootless.create.init):
    its memory map shows which of the two it has loaded."""
    bundle = runtime.bundle(["true"], hooks={"startContainer": [{"path": "/bin/true"}]})
    container_id = runtime.new_id("native")
    runtime.run("create", "--bundle", bundle, container_id, check=True, env=BACKENDS[backend])
    maps = mapped_objects(runtime.state(container_id)["pid"])
    runtime.run("delete", "--force", container_id, check=True)
    native, ctypes = "rootless/linux/_native." in maps, "/_ctypes." in maps
    assert (native, ctypes) == ((True, False) if backend == "native" else (False, True))


REPORT = ("hostname; cat /proc/sys/kernel/domainname; ip -o link show lo | grep -o '[<,]UP[,>]'; "
          "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; "
          "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc; uname -m; "
          "mkdir /dev/shm/dir 2>&1; touch /file 2>&1; echo 1 2>&1 >/proc/sys/kernel/domainname; id -u")


def test_both_backends_make_the_same_container(runtime: Runtime) -> None:
    process = {"user": {"uid": 1000, "gid": 1000},
               "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
                           {"type": "RLIMIT_CORE", "soft": 0, "hard": 2**64 - 1}],
               "capabilities": {"bounding": list(DEFAULT_CAPS), "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                                "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "ambient": ["CAP_KILL"]}}
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    seen = {}
    for backend, env in BACKENDS.items():
        bundle = runtime.bundle(["sh", "-c", REPORT], process=process, domainname="example.org",
                                linux={"personality": {"domain": "LINUX32"}, "seccomp": seccomp})
        container_id = runtime.new_id("native")
        result = runtime.run("run", "--bundle", bundle, container_id, env=env)
        assert result.returncode == 0, (backend, result.stderr)
        runtime.assert_no_leaks(container_id, bundle=bundle)
        seen[backend] = result.stdout
    assert seen["native"] == seen["ctypes"]
    lines = seen["native"].splitlines()
    kill = cap_mask(["CAP_KILL"])
    assert lines == [
        "rootless", "example.org", ",UP,",
        f"CapInh:\t{cap_mask(['CAP_KILL', 'CAP_NET_BIND_SERVICE'])}", f"CapPrm:\t{kill}", f"CapEff:\t{kill}",
        f"CapBnd:\t{cap_mask(DEFAULT_CAPS)}", f"CapAmb:\t{kill}", "NoNewPrivs:\t1", "Seccomp:\t2",
        "256", "512", "0", "unlimited", "i686",
        "mkdir: can't create directory '/dev/shm/dir': Permission denied",
        "touch: /file: Read-only file system",
        "sh: can't create /proc/sys/kernel/domainname: Read-only file system",
        "1000"], seen["native"]


def test_both_backends_set_up_the_terminal(runtime: Runtime) -> None:
    """The pty of a --console-socket takes process.consoleSize and is the controlling terminal;
    a foreground `exec -t` to a file gets no CR before LF (ONLCR cleared, as runc does)."""
    seen = {}
    for backend, env in BACKENDS.items():
        folder = Path(tempfile.mkdtemp(prefix="console-", dir="/tmp"))
        os.chown(folder, runtime.user.uid, runtime.user.gid)
        receiver = ConsoleReceiver(folder / "sock", (runtime.user.uid, runtime.user.gid))
        script = "read line; stty size; tty; [ -t 0 ] && echo stdin-tty; sleep 600"
        bundle = runtime.bundle(["sh", "-c", script], terminal=True, process={"consoleSize": {"height": 23, "width": 71}})
        container_id = runtime.new_id("native")
        runtime.run("run", "-d", "--console-socket", folder / "sock", "--bundle", bundle, container_id,
                    check=True, env=env)
        exec_output = _exec_to_file(runtime, container_id, env)
        runtime.run("delete", "--force", container_id, check=True)
        receiver.thread.join(timeout=20)
        shutil.rmtree(folder)
        seen[backend] = (receiver.output, exec_output)
    assert seen["native"] == seen["ctypes"]
    assert seen["native"] == (b"typed-in\r\n23 71\r\n/dev/pts/0\r\nstdin-tty\r\n", b"a\nb\nend"), seen


def _exec_to_file(runtime: Runtime, container_id: str, env: dict) -> bytes:
    """What a foreground `exec -t` writes to a file that is its stdout, a terminal its stdin."""
    terminal = HeldTerminal(24, 80)
    with tempfile.TemporaryFile() as out:
        run = subprocess.Popen(runtime.command("exec", "-t", container_id, "sh", "-c", "printf 'a\\nb\\n'; printf end"),
                               stdin=terminal.slave, stdout=out, stderr=terminal.slave, env=runtime._env(env),
                               cwd=runtime.work_dir, start_new_session=True)
        assert run.wait(timeout=30) == 0
        out.seek(0)
        written = out.read()
    terminal.close()
    return written

