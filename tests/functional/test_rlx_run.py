"""`rlx run` through its real entry point, as the unprivileged test user: an image from the
local registry (Debian's docker-registry on 127.0.0.1), a docker-archive, a rootfs directory and
`host`; a real pty for -it; volumes and their owners; -p through a real pasta; what --rm leaves
(nothing); the one-line errors. Nothing comes from the internet."""

import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import pytest

from helpers.images import free_port
from helpers.terminal import HeldTerminal
from helpers.users import chown_tree, command_as, subordinate_range
from test_images import Rlx, images_dir, layers, registry  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run rlx as the test user")


@pytest.fixture
def rlx(rootless_runtime, test_user):
    """test_images' rlx, with a short XDG_RUNTIME_DIR of its own: a container's state directory
    (XDG_RUNTIME_DIR/rlx/ID, ID 64 characters) holds slirp4netns's API socket, and a socket path
    must fit in 108 bytes (/run/user/UID/rlx/ID/slirp4netns.sock does, by 8)."""
    binary = os.path.join(os.path.dirname(rootless_runtime.binary), "rlx")
    home = rootless_runtime.work_dir / "home"
    home.mkdir()
    client = Rlx(test_user, binary, home)
    client.runtime_dir = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    chown_tree(client.runtime_dir, test_user)
    client.env["XDG_RUNTIME_DIR"] = str(client.runtime_dir)
    yield client
    subprocess.run(command_as(test_user, [binary, "--store", str(client.store), "rmi", "--all"]),
                   capture_output=True, env=client.env)
    shutil.rmtree(client.runtime_dir, ignore_errors=True)


def trusting(rlx: Rlx, registry) -> None:  # noqa: F811
    rlx.registries(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')


def leftovers(rlx: Rlx) -> list[str]:
    """What rlx keeps of containers: records and bundles, runtime state, network helpers."""
    found = []
    containers = rlx.store / "containers"
    if containers.is_dir():
        found += [f"record {name}" for name in os.listdir(containers) if not name.startswith(".")]
    state = rlx.runtime_dir / "rlx"
    if state.is_dir():
        found += [f"state {name}" for name in os.listdir(state)]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if owner == rlx.user.uid and os.path.basename(cmdline[0]) in (b"pasta", b"slirp4netns", b"pasta.avx2"):
            if any(str(rlx.runtime_dir).encode() in arg for arg in cmdline):
                found.append(f"helper {pid}")
    return found


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0, result.stdout
    assert result.stderr.startswith("rlx: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_an_image_from_the_registry_prints_its_output_and_nothing_else(rlx: Rlx, registry) -> None:  # noqa: F811
    """Pulled when missing, without a progress bar off a terminal; run as the image says (its
    User, WorkingDir, Env); exit status the container's; --rm leaves nothing."""
    trusting(rlx, registry)
    result = rlx.run("run", "--rm", "--network", "none", f"{registry.host}/app:1", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no progress, no notes: only the container's output"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("uid=33(www-data) gid=33(www-data)"), result.stdout
    assert "/srv" in lines and "FOO=bar" in lines, result.stdout
    assert leftovers(rlx) == []
    status = rlx.run("run", "--rm", "--network", "none", f"{registry.host}/app:1", "exit 7", check=False)
    assert status.returncode == 7 and status.stderr == ""


def test_a_docker_archive_a_directory_and_a_rootfs_tarball(rlx: Rlx, images_dir: Path, busybox_rootfs: Path,  # noqa: F811
                                                           busybox_rootfs_tar: Path) -> None:
    archive = rlx.run("run", "--rm", "--network", "none", images_dir / "app.docker.tar", "id -u; cat /srv/www")
    assert archive.stdout == "33\nhello from 33\n" and archive.stderr == ""
    directory = rlx.home / "rootfs"
    shutil.copytree(busybox_rootfs, directory, symlinks=True)
    chown_tree(directory, rlx.user)
    seen = rlx.run("run", "--rm", "--network", "none", "-e", "A=1", "-w", "/tmp", directory,
                   "/bin/sh", "-c", "echo $A; pwd; id -u; echo written > /written")
    assert seen.stdout == "1\n/tmp\n0\n", seen.stdout
    assert (directory / "written").read_text() == "written\n", "a rootfs directory is used as it is (podman's --rootfs)"
    assert (directory / "written").stat().st_uid == rlx.user.uid
    tarball = rlx.run("run", "--rm", "--network", "none", busybox_rootfs_tar, "/bin/sh", "-c", "echo from-tar")
    assert tarball.stdout == "from-tar\n"
    assert leftovers(rlx) == []


def test_host_sandbox(rlx: Rlx) -> None:  # noqa: F811
    """The host's /usr and /etc read-only, its merged-/usr links, a private /tmp, the current
    directory writable at the same path although it lies under /tmp, the user's own UID."""
    work = Path(tempfile.mkdtemp(prefix="rlx-host-", dir="/tmp"))
    try:
        chown_tree(work, rlx.user)
        (Path("/tmp") / "rlx-host-visible").write_text("host tmp")
        script = ("id -u; id -g; pwd; echo made > made; touch /usr/rlx-probe 2>/dev/null || echo usr-ro; "
                  "touch /etc/rlx-probe 2>/dev/null || echo etc-ro; readlink /bin; ls /tmp; test -x /usr/bin/env && echo env")
        argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "run", "--rm", "--network", "none",
                                     "host", "sh", "-c", script])
        result = subprocess.run(argv, capture_output=True, text=True, env=rlx.env, cwd=work, timeout=60)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[:3] == [str(rlx.user.uid), str(rlx.user.gid), str(work)], result.stdout
        assert "usr-ro" in lines and "etc-ro" in lines and "env" in lines
        assert os.readlink("/bin") in lines, "the host's merged-/usr link"
        assert work.name in lines and "rlx-host-visible" not in lines, "a private /tmp with the cwd inside"
        assert (work / "made").read_text() == "made\n" and (work / "made").stat().st_uid == rlx.user.uid
        assert leftovers(rlx) == []
    finally:
        shutil.rmtree(work)
        os.unlink("/tmp/rlx-host-visible")


def _spawn_on(terminal: HeldTerminal, argv: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    return subprocess.Popen(argv, stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave, env=env,
                            cwd=cwd, preexec_fn=controlling_terminal)


def test_run_it_in_a_real_terminal(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    """-it: the container sees a terminal of our size, gets our input, follows a resize, and
    its exit status is ours."""
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    terminal = HeldTerminal(24, 80)
    script = "stty size; read line; echo got-$line; stty size; exit 5"
    argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "run", "-it", "--rm", "--network", "none",
                                 "localhost/base:1", "sh", "-c", script])
    proc = _spawn_on(terminal, argv, rlx.env, rlx.home)
    try:
        assert terminal.read_until(b"24 80"), terminal.seen
        terminal.resize(40, 120)
        proc.send_signal(signal.SIGWINCH)  # what the kernel sends the foreground group; setpriv is in between
        time.sleep(0.5)
        os.write(terminal.master, b"hello\r")
        assert terminal.read_until(b"40 120"), terminal.seen
        assert b"got-hello" in terminal.seen
        assert proc.wait(timeout=30) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
        terminal.close()
    assert leftovers(rlx) == []


def test_pull_progress_only_on_a_terminal(rlx: Rlx, registry) -> None:  # noqa: F811
    trusting(rlx, registry)
    terminal = HeldTerminal(24, 80)
    argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "run", "--rm", "--network", "none",
                                 f"{registry.host}/base:1", "echo", "ran"])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal.slave,
                            env=rlx.env, cwd=rlx.home)
    out, _ = proc.communicate(timeout=120)
    terminal.read_until(b"blobs", timeout=2)
    terminal.close()
    assert proc.returncode == 0 and out == b"ran\n"
    assert b"blobs" in terminal.seen and b"MB" in terminal.seen, terminal.seen
    rlx.run("rmi", "--all")
    quiet = rlx.run("run", "--rm", "--network", "none", f"{registry.host}/base:1", "echo", "ran")
    assert quiet.stdout == "ran\n" and quiet.stderr == "", "off a terminal: no progress"


def test_volumes_have_the_right_owners_inside_and_out(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    rlx.run("load", images_dir / "app", "--name", "localhost/app:1")
    host_dir = rlx.home / "shared"
    host_dir.mkdir()
    (host_dir / "mine").write_text("x")
    chown_tree(host_dir, rlx.user)
    script = "ls -ln /data/mine | awk '{print $3}'; echo in > /data/from-root; stat -c %u /named; echo v > /named/f"
    rlx.run("run", "--rm", "--network", "none", "-u", "0", "-v", f"{host_dir}:/data", "-v", "cache:/named",
            "localhost/app:1", script)
    # the store's map: the user is root inside, so root's files are the user's outside
    assert (host_dir / "from-root").stat().st_uid == rlx.user.uid
    www = rlx.run("run", "--rm", "--network", "none", "-v", "webdata:/named", "-v", f"{host_dir}:/ro:ro",
                  "localhost/app:1", "stat -c '%u %g' /named; echo w > /named/f && echo wrote; "
                                     "echo no > /ro/x 2>/dev/null || echo ro")
    assert www.stdout.splitlines() == ["33 33", "wrote", "ro"], www.stdout
    volume = rlx.store / "volumes/webdata/_data"
    start = subordinate_range(rlx.user).start
    assert volume.stat().st_uid == start + 32, "UID 33 inside is subordinate UID 33 outside"
    keep = rlx.run("run", "--rm", "--network", "none", "--userns", "keep-id", "-v", f"{host_dir}:/data",
                   "localhost/app:1", "id -u; stat -c %u /data/mine; echo k > /data/kept")
    assert keep.stdout.splitlines() == [str(rlx.user.uid)] * 2, keep.stdout
    assert (host_dir / "kept").stat().st_uid == rlx.user.uid
    assert leftovers(rlx) == []


@pytest.mark.parametrize("network", ["pasta", "slirp4netns"])
def test_published_port_is_reachable_from_the_host(rlx: Rlx, images_dir: Path, network: str) -> None:  # noqa: F811
    """Through a real helper, whose own output stays off ours."""
    if shutil.which(network) is None:
        pytest.skip(f"{network} is not installed")
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    port = free_port()
    argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "run", "--rm", "--init", "--network", network,
                                 "-p", f"{port}:8080", "localhost/base:1", "httpd", "-f", "-p", "8080", "-h", "/etc"])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rlx.env, cwd=rlx.home)
    try:
        received = b""
        deadline = time.monotonic() + 30
        while b"root:x:0:0" not in received and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(b"GET /passwd HTTP/1.0\r\n\r\n")
                    received = b"".join(iter(lambda: conn.recv(4096), b""))
            except OSError:
                pass
            time.sleep(0.2)  # slirp4netns accepts before the server listens: an empty answer, then retry
        assert b"root:x:0:0" in received, (received, proc.poll(), proc.poll() is not None and proc.stderr.read())
        proc.send_signal(signal.SIGTERM)  # passed on to the container (catatonit, then httpd)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + signal.SIGTERM and err == b"", (proc.returncode, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert leftovers(rlx) == []


def test_detached_rm_leaves_nothing_once_it_exits(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    result = rlx.run("run", "-d", "--rm", "--name", "brief", "localhost/base:1", "sleep", "1")
    container_id = result.stdout.strip()
    assert len(container_id) == 64 and result.stderr == ""
    record = json.loads((rlx.store / "containers" / container_id / "record.json").read_text())
    assert record["name"] == "brief" and record["auto_remove"] is True and record["network"] in ("pasta", "slirp4netns")
    assert record["command"] == ["sleep", "1"] and record["stop_signal"] == "SIGTERM"
    deadline = time.monotonic() + 30
    while leftovers(rlx) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(rlx) == []


def test_detached_keeps_a_log_and_a_record(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    rlx.run("load", images_dir / "app", "--name", "localhost/app:1")
    container_id = rlx.run("run", "-d", "--network", "none", "-p", "8080:80", "localhost/app:1", check=False)
    one_line_error(container_id, "-p needs --network pasta or slirp4netns")
    container_id = rlx.run("run", "-d", "--name", "kept", "--network", "none", "localhost/app:1", "echo logged").stdout.strip()
    folder = rlx.store / "containers" / container_id
    deadline = time.monotonic() + 30
    while "logged" not in ((folder / "ctr.log").read_text() if (folder / "ctr.log").exists() else "") \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (folder / "ctr.log").read_text().endswith(" stdout F logged\n")
    record = json.loads((folder / "record.json").read_text())
    assert record["stop_signal"] == "SIGQUIT" and record["image"] == "localhost/app:1"
    assert record["image_id"].startswith("sha256:") and record["created"].endswith("Z")
    taken = rlx.run("run", "--name", "kept", "--network", "none", "localhost/app:1", "true", check=False)
    one_line_error(taken, "'kept' is already used", container_id[:12])
    # rlx rm is the other verbs' (branch rlxverbs): the runtime's delete and the record here
    rootless = os.path.join(os.path.dirname(rlx.binary), "rootless")
    subprocess.run(command_as(rlx.user, [rootless, "--root", str(rlx.runtime_dir / "rlx"), "delete", "-f",
                                         container_id]), env=rlx.env, check=True)
    subprocess.run(command_as(rlx.user, ["rm", "-rf", str(folder)]), check=True)


def test_errors_are_one_line(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    missing = rlx.run("run", "--rm", "localhost/nothing-here:1", check=False)
    one_line_error(missing, "no image localhost/nothing-here:1 in the store", str(rlx.store), "localhost")
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    one_line_error(rlx.run("run", "--memory", "lots", "localhost/base:1", check=False), "--memory 'lots'")
    one_line_error(rlx.run("run", "--cap-add", "FLY", "localhost/base:1", check=False), "unknown capability 'FLY'")
    one_line_error(rlx.run("run", "-v", "/nonexistent-rlx:/x", "localhost/base:1", check=False),
                   "/nonexistent-rlx: no such file")
    one_line_error(rlx.run("run", "--network", "bridge", "localhost/base:1", check=False), "--network 'bridge'")
    assert leftovers(rlx) == []


def test_a_port_in_use_is_named(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    if shutil.which("pasta") is None:
        pytest.skip("pasta is not installed (Debian package passt)")
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rlx.run("run", "--rm", "-p", f"{port}:80", "localhost/base:1", "true", check=False)
    one_line_error(result, str(port))
    assert leftovers(rlx) == []


def test_no_subordinate_ids_names_usermod(rlx: Rlx, images_dir: Path, scratch_root: Path) -> None:  # noqa: F811
    """A user without an /etc/subuid range gets the usermod line that fixes it."""
    name = "rlx-nosubid"
    if shutil.which("useradd") is None:
        pytest.skip("useradd is missing")
    subprocess.run(["userdel", "-r", name], capture_output=True)
    subprocess.run(["useradd", "--create-home", "--home-dir", str(scratch_root / name), name], check=True)
    try:
        subprocess.run(["usermod", "--del-subuids", "1-4294967294", "--del-subgids", "1-4294967294", name],
                       capture_output=True)
        entry = pwd.getpwnam(name)
        from helpers.users import User
        other = Rlx(User(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir), Path(entry.pw_dir) / "run"),
                    rlx.binary, Path(entry.pw_dir))
        load = other.run("load", images_dir / "base", "--name", "localhost/base:1", check=False)
        result = other.run("run", "--rm", "--network", "none", "localhost/base:1", "true", check=False)
        one_line_error(result, "usermod --add-subuids", name)
        assert load.returncode == 0 or "usermod" in load.stderr
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)


def test_flags_as_the_container_sees_them(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    env_file = rlx.home / "env"
    env_file.write_text("FROM_FILE=yes\n")
    chown_tree(env_file, rlx.user)
    profile = rlx.home / "seccomp.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    chown_tree(profile, rlx.user)
    script = ("echo pid1=$(cat /proc/1/comm); hostname; echo $FROM_FILE; grep CapBnd /proc/self/status; "
              "touch /root-file 2>/dev/null || echo root-ro; touch /tmp/t && echo tmp-rw; "
              "mkdir /tmp/d 2>/dev/null || echo mkdir-denied; grep ' /scratch ' /proc/mounts | cut -d' ' -f3")
    result = rlx.run("run", "--rm", "--network", "none", "--init", "--hostname", "box", "--env-file", env_file,
                     "--read-only", "--cap-drop", "ALL", "--cap-add", "NET_RAW", "--tmpfs", "/scratch",
                     "--security-opt", f"seccomp={profile}", "--entrypoint", "/bin/sh", "localhost/base:1",
                     "-c", script)
    lines = result.stdout.splitlines()
    assert lines[0] == "pid1=rlx-init" and lines[1:3] == ["box", "yes"], result.stdout
    assert lines[3].split()[1] == f"{1 << 13:016x}", "CAP_NET_RAW alone"
    assert lines[4:] == ["root-ro", "tmp-rw", "mkdir-denied", "tmpfs"], result.stdout
    # limits go through the runtime's cgroup drivers: here (no delegation) its one-line warning
    limited = rlx.run("run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "20",
                      "localhost/base:1", "true")
    if not (Path("/sys/fs/cgroup/cgroup.controllers").exists()):
        assert limited.stderr.startswith("rlx: warning: ") and limited.stderr.count("\n") == 1, limited.stderr
        assert "memory" in limited.stderr and "pids" in limited.stderr
    assert leftovers(rlx) == []


def test_input_only_with_i_and_the_exit_recorded(rlx: Rlx, images_dir: Path) -> None:  # noqa: F811
    rlx.run("load", images_dir / "base", "--name", "localhost/base:1")
    def run(*args: str) -> subprocess.CompletedProcess:
        argv = command_as(rlx.user, [rlx.binary, "--store", str(rlx.store), "run", *args])
        return subprocess.run(argv, input="typed\n", capture_output=True, text=True, env=rlx.env, cwd=rlx.home,
                              timeout=60)
    assert run("--rm", "-i", "--network", "none", "localhost/base:1", "cat").stdout == "typed\n"
    assert run("--rm", "--network", "none", "localhost/base:1", "cat").stdout == "", "no -i: no input (podman's)"
    kept = run("--name", "exited", "--network", "none", "localhost/base:1", "sh", "-c", "exit 3")
    assert kept.returncode == 3
    folder = next((rlx.store / "containers").glob("*/record.json")).parent
    record = json.loads((folder / "record.json").read_text())
    assert record["name"] == "exited" and record["exit_code"] == 3 and record["finished"].endswith("Z")
    assert not (rlx.runtime_dir / "rlx" / folder.name).exists(), "a foreground container's runtime state goes"
    subprocess.run(command_as(rlx.user, ["rm", "-rf", str(folder)]), check=True)
