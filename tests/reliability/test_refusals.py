"""Inputs that reached `rootless: internal error` or were accepted and failed later: each is
now one line that says what to do, at create or at start (issue 13). Messages are compared
with runc 1.1.5's where runc has one."""

import os

import pytest

from common import assert_one_line_error


def _one_line(result, *needles):
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert_one_line_error(result, " ".join(needles))
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_deep_config(rootless_runtime):
    rt = rootless_runtime
    bundle = rt.bundle(["true"])
    (bundle / "config.json").write_text('{"a": ' + "[" * 10000 + "]" * 10000 + "}")
    _one_line(rt.run("create", "--bundle", bundle, rt.new_id()), "nested too deeply")


def test_long_id(rootless_runtime):
    rt = rootless_runtime
    bundle = rt.bundle(["true"])
    _one_line(rt.run("create", "--bundle", bundle, "a" * 1024), "invalid container id", "at most 255")
    _one_line(rt.run("state", "a" * 1024), "invalid container id")


@pytest.mark.parametrize("kind", ["file", "unwritable", "long"])
def test_bad_state_root(rootless_runtime, kind):
    rt = rootless_runtime
    bundle = rt.bundle(["true"])
    if kind == "file":
        root = rt.work_dir / "a-file"
        root.write_text("")
    elif kind == "unwritable":
        folder = rt.work_dir / "closed"
        folder.mkdir(mode=0o555)
        os.chmod(folder, 0o555)
        if rt.user.is_root:
            pytest.skip("root writes into any folder")
        root = folder / "state"
    else:
        root = rt.work_dir / ("d" * 4000)
    for verb in (("create", "--bundle", str(bundle), "x"), ("state", "x"), ("list",), ("delete", "-f", "x")):
        result = rt.run(*verb[:0], "--root", str(root), *verb)
        if kind == "unwritable" and verb[0] in ("state", "list", "delete"):
            assert "internal error" not in result.stderr, result.stderr
            continue
        _one_line(result, "state")


@pytest.mark.parametrize("content", ["garbled", "unreadable", "array"])
def test_bad_hooks_file(rootless_runtime, content):
    """hooks.json in the state directory: start says so in one line; delete -f still removes."""
    rt = rootless_runtime
    bundle = rt.bundle(["sleep", "100"], hooks={"poststart": [{"path": "/bin/true"}],
                                                 "poststop": [{"path": "/bin/true"}]})
    container_id = rt.new_id()
    assert rt.run("create", "--bundle", bundle, container_id).returncode == 0
    path = rt.state_dir(container_id) / "hooks.json"
    if content == "garbled":
        path.write_text('{"poststart": [{"pa')
    elif content == "array":
        path.write_text('[1, 2]')
    else:
        os.chmod(path, 0)
        if rt.user.is_root:
            pytest.skip("root reads any file")
    _one_line(rt.run("start", container_id), "hooks")
    result = rt.run("delete", "-f", container_id)
    assert result.returncode == 0 and "internal error" not in result.stderr, result.stderr
    rt.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("process, needle", [
    ({"env": ["PATH=/bin", "NOEQ"]}, "invalid environment variable"),
    ({"env": ["PATH=/bin", "A=\0x"]}, "can't contain null"),
    ({"args": ["echo", "a\0b"]}, "NUL"),
    ({"args": ["echo", "\ud800"]}, "lone surrogate"),
    ({"env": ["PATH=/bin", "A=\udc80"]}, "lone surrogate"),
])
def test_refused_process_strings(runtime, process, needle):
    rt = runtime
    bundle = rt.bundle(["true"], process=process)
    container_id = rt.new_id()
    _one_line(rt.run("create", "--bundle", bundle, container_id), needle)
    rt.assert_no_leaks(container_id, bundle=bundle)


def test_preserve_fds_beyond_open(runtime):
    rt = runtime
    bundle = rt.bundle(["true"])
    container_id = rt.new_id()
    _one_line(rt.run("run", "--preserve-fds", "40", "--bundle", bundle, container_id), "--preserve-fds", "not open")
    rt.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("verb", ["run", "start"])
@pytest.mark.parametrize("args, message", [
    (["/bin/echo", "a" * (1 << 20)], "exec /bin/echo: argument list too long"),
    (["/not-elf"], "exec /not-elf: exec format error"),
])
def test_failed_execve_is_reported(runtime, busybox_rootfs, verb, args, message):
    """runc prints these words from its init on the container's stderr and `start` exits 0; here
    start and run report them, in one line, and fail."""
    rt = runtime
    _plain_files(busybox_rootfs)
    bundle = rt.bundle(args)
    container_id = rt.new_id()
    if verb == "start":
        assert rt.run("create", "--bundle", bundle, container_id).returncode == 0
        result = rt.run("start", container_id)
    else:
        result = rt.run("run", "--bundle", bundle, container_id)
    _one_line(result, message)
    rt.run("delete", "-f", container_id)
    rt.assert_no_leaks(container_id, bundle=bundle)


def _plain_files(rootfs):
    for name, mode in (("not-elf", 0o755), ("not-executable", 0o644)):
        if not (rootfs / name).exists():
            (rootfs / name).write_text("plain text\n")
            os.chmod(rootfs / name, mode)


def test_not_executable_is_refused_at_create(runtime, busybox_rootfs):
    """A file without an execute bit fails Go's LookPath in runc's init, before `create` returns
    (containerd then reports "OCI runtime create failed", podman exit 126): so here."""
    rt = runtime
    _plain_files(busybox_rootfs)
    bundle = rt.bundle(["/not-executable"])
    container_id = rt.new_id()
    _one_line(rt.run("create", "--bundle", bundle, container_id), 'exec: "/not-executable": permission denied')
    rt.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("text", ["٣", "１５", "K\u0130LL", "SIG٩"])
def test_signal_names_are_ascii(rootless_runtime, text):
    rt = rootless_runtime
    bundle = rt.bundle(["sleep", "100"])
    container_id = rt.new_id()
    assert rt.run("create", "--bundle", bundle, container_id).returncode == 0
    _one_line(rt.run("kill", container_id, text), "invalid signal")
    assert rt.state(container_id)["status"] == "created"
    assert rt.run("kill", container_id, "9").returncode == 0
    assert rt.run("delete", "-f", container_id).returncode == 0
