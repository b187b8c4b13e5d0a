"""Classic runtime escapes, attempted for real: each test tries the attack from inside a
container and checks that it fails."""

import os
import stat

import pytest

from helpers.runtime import Runtime


def test_no_host_fd_or_cwd_reaches_the_process(runtime: Runtime) -> None:
    """The CVE-2024-21626 class: a runtime fd (state dir, rootfs, /proc, the sync pipes) or a
    working directory outside the rootfs leaking into the container."""
    bundle = runtime.bundle(["sh", "-c", "readlink /proc/self/cwd; ls -l /proc/self/fd"])
    result = runtime.run("run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "/"
    fds = {}
    for line in lines[1:]:
        if " -> " in line:
            left, target = line.split(" -> ", 1)
            fds[left.split()[-1]] = target
    # 0 is /dev/null and 1, 2 the caller's files (the harness's temporary files, opened before
    # the container existed). Nothing else.
    assert sorted(fds) == ["0", "1", "2"], fds
    assert fds["0"] == "/dev/null"


def test_init_exe_is_out_of_reach_of_a_root_container(root_runtime: Runtime) -> None:
    """The CVE-2019-5736 class: while the init of a root container (the host's Python) waits in
    the container's namespaces, another process in that PID namespace must not reach its
    /proc/PID/exe, which would let it rewrite the host's interpreter once it is free."""
    runtime = root_runtime
    first_bundle = runtime.bundle(["sleep", "600"])
    first = runtime.new_id()
    runtime.run("create", "--bundle", first_bundle, first, check=True)
    init = runtime.state(first)["pid"]
    namespaces = [{"type": t} for t in ("ipc", "uts", "mount", "network")] + [
        {"type": "pid", "path": f"/proc/{init}/ns/pid"}]
    bundle = runtime.bundle(["sh", "-c", "readlink /proc/1/exe || echo refused; "
                                         "cat /proc/1/exe > /dev/null 2>&1 || echo unreadable"],
                            linux={"namespaces": namespaces})
    result = runtime.run("run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["refused", "unreadable"], result.stdout
    runtime.run("delete", "-f", first, check=True)
    runtime.assert_no_leaks(first, bundle=first_bundle, pids=(init,))


_REACH_FROM_INSIDE = (
    "for f in /proc/1/fd/*; do n=${f##*/}; case $n in 0|1|2|'*') continue;; esac; "
    "readlink $f >/dev/null 2>&1 && echo link; "
    "ls $f/ >/dev/null 2>&1 && echo dir; "
    "cat $f/../config.json >/dev/null 2>&1 && echo host; done; "
    "cd /proc/self/fd && echo own: *")


def _fds(pid: int) -> dict[int, str]:
    return {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}


@pytest.mark.parametrize("waits_as", ["initwait", "python"])
def test_no_runtime_fd_reaches_the_container(runtime: Runtime, waits_as: str) -> None:
    """The CVE-2024-21626 class: the created init, waiting for `start`, must hold no fd of the
    runtime that the container can use, and `exec` must bring none in. From the host: the
    init holds stdio and exec.fifo (a fifo, no directory to climb out of), and an exec'd
    process only stdio. From inside (exec into the created, then the started container):
    /proc/1/fd gives no way out, and the process sees only its own fds."""
    hooks = {"startContainer": [{"path": "/bin/true"}]} if waits_as == "python" else None
    bundle = runtime.bundle(["sleep", "600"], hooks=hooks)
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    init = runtime.state(container_id)["pid"]
    held = _fds(init)
    runtime_fds = [n for n in held if n > 2]
    assert len(runtime_fds) == 1 and held[runtime_fds[0]] == str(runtime.state_dir(container_id) / "exec.fifo"), held
    assert stat.S_ISFIFO(os.stat(f"/proc/{init}/fd/{runtime_fds[0]}").st_mode)

    inside = runtime.run("exec", container_id, "sh", "-c", _REACH_FROM_INSIDE)
    assert inside.returncode == 0, inside.stderr
    lines = inside.stdout.splitlines()
    assert "dir" not in lines and "host" not in lines, lines
    if waits_as == "initwait" or not runtime.rootless:
        # Undumpable while it waits: the fds in /proc/1/fd are closed to the container's root.
        assert "link" not in lines, lines
    assert lines[-1] == "own: 0 1 2 3", lines  # 3: the shell's own directory listing

    pid_file = runtime.work_dir / "exec.pid"
    runtime.run("exec", "--detach", "--pid-file", pid_file, container_id, "sleep", "600", check=True)
    assert sorted(_fds(int(pid_file.read_text()))) == [0, 1, 2]

    runtime.run("start", container_id, check=True)
    started = runtime.run("exec", container_id, "sh", "-c", _REACH_FROM_INSIDE + "; echo init: $(ls /proc/1/fd)")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == ["own: 0 1 2 3", "init: 0 1 2"], started.stdout
    assert "dir" not in started.stdout and "host" not in started.stdout
    runtime.run("delete", "-f", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(init,))
