"""Classic runtime escapes, attempted for real: each test tries the attack from inside a
container and checks that it fails."""


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
