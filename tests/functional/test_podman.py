"""podman drives rootless: `podman --runtime $(command -v rootless)` as the unprivileged test
user, with Debian's podman and conmon and an image imported from the busybox rootfs.

podman runs the runtime inside its own user namespace as UID 0, with no ID maps in config.json,
its default seccomp profile, and conmon's pipes as stdio (see shared/PODMAN.md)."""

import os
import socket
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers.runtime import wait_until
from helpers.users import User, chown_tree, clean_env, command_as

pytestmark = pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None
                                and not os.path.exists("/usr/bin/conmon") and not os.path.exists("/usr/libexec/podman/conmon"),
                                reason="podman and conmon are missing (tests/run installs them)")

IMAGE = "localhost/rootless-tests-busybox"


class Podman:
    def __init__(self, user: User, runtime_bin: str, home: Path):
        self.user, self.runtime_bin, self.home = user, runtime_bin, home
        conf = home / "containers.conf"
        # --log/--log-format=json go only to runtimes named here (podman's runtime_supports_json).
        conf.write_text('[engine]\nruntime_supports_json = ["crun", "runc", "kata", "runsc", "rootless"]\n'
                        'events_logger = "file"\n[containers]\nlog_driver = "k8s-file"\n')
        self.env = clean_env(user, {"CONTAINERS_CONF": str(conf)})
        # podman refuses a runroot longer than 50 characters: one under the user's runtime dir.
        self.runroot = Path(user.runtime_dir) / f"rootless-podman-{os.getpid()}-{home.name[-8:]}"
        self.runroot.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.runroot, user.uid, user.gid)
        self.base = ["podman", "--root", str(home / "storage"), "--runroot", str(self.runroot),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", runtime_bin]
        chown_tree(home, user)

    def __call__(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        result = subprocess.run(command_as(self.user, [*self.base, *args]), capture_output=True, text=True,
                                timeout=timeout, env=self.env, cwd=self.home, stdin=subprocess.DEVNULL)
        if check:
            assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result


RUNC = shutil.which("runc") or "/usr/sbin/runc"
# Every case runs against rootless and against runc on the same image, and expects the same
# (`-v` shows the table: test[rootless] beside test[runc]). Both take about 6 minutes on this
# 2-core machine under load (3 alone): ROOTLESS_PODMAN_MATRIX=rootless leaves runc out.
RUNTIMES = ["rootless"] if os.environ.get("ROOTLESS_PODMAN_MATRIX") == "rootless" else ["rootless", "runc"]


@pytest.fixture(scope="module", params=RUNTIMES)
def podman(request: pytest.FixtureRequest, rootless_bin: str, test_user: User, busybox_rootfs_tar: Path,
           scratch_root: Path) -> Podman:
    if request.param == "runc" and not os.path.exists(RUNC):
        pytest.skip("runc is missing (tests/run installs it)")
    home = Path(tempfile.mkdtemp(prefix=f"podman-{request.param}-", dir=scratch_root))
    os.chmod(home, 0o755)
    shutil.copy(busybox_rootfs_tar, home / "rootfs.tar")
    client = Podman(test_user, rootless_bin if request.param == "rootless" else RUNC, home)
    client.name = request.param
    client("import", str(home / "rootfs.tar"), IMAGE, check=True)
    yield client
    client("pod", "rm", "--all", "--force", timeout=120)
    client("rm", "--all", "--force", "--time", "0", timeout=120)
    subprocess.run(command_as(test_user, ["podman", "unshare", "rm", "-rf", str(home / "storage"),
                                          str(client.runroot)]),
                   env=client.env, capture_output=True, cwd=home)


def runtime_state_ids(user: User) -> list[str]:
    root = Path(f"/run/user/{user.uid}/rootless")
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_podman_run_rm_output_and_exit_code(podman: Podman, test_user: User) -> None:
    before = runtime_state_ids(test_user)
    result = podman("run", "--rm", "--network", "none", IMAGE,
                    "sh", "-c", "echo hello from podman; id -u; echo $$; exit 7")
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == ["hello from podman", "0", "1"]
    if podman.name == "rootless":
        assert runtime_state_ids(test_user) == before


def test_podman_uses_its_user_namespace(podman: Podman) -> None:
    result = podman("run", "--rm", "--network", "none", IMAGE, "cat", "/proc/self/uid_map", check=True)
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][:2] == ["0", str(podman.user.uid)] and len(rows) == 2


def test_podman_run_detached_stop_rm(podman: Podman, test_user: User) -> None:
    name = f"rootless-d-{os.getpid()}"
    podman("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "600", check=True)
    listed = podman("ps", "--format", "{{.Names}} {{.Status}}", check=True).stdout
    assert name in listed and "Up" in listed
    started = time.monotonic()
    podman("stop", "-t", "2", name, check=True)
    assert time.monotonic() - started < 30
    inspect = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name, check=True).stdout.split()
    assert inspect[0] == "exited"
    podman("rm", name, check=True)
    assert name not in podman("ps", "-a", "--format", "{{.Names}}", check=True).stdout
    if podman.name == "rootless":
        assert runtime_state_ids(test_user) == []


def test_podman_reports_a_missing_command(podman: Podman) -> None:
    result = podman("run", "--rm", "--network", "none", IMAGE, "/no/such/program")
    assert result.returncode == 127, (result.returncode, result.stderr)
    assert "no such file or directory" in result.stderr.lower()


def test_podman_run_interactive_terminal(podman: Podman) -> None:
    """`podman run -it`: conmon passes --console-socket, the runtime sends it the pty master;
    script(1) gives podman the terminal it asks for."""
    inner = " ".join([*podman.base, "run", "-it", "--rm", "--network", "none", IMAGE,
                      "sh", "-c", "'tty; test -t 0 && echo stdin-is-a-tty; read line; echo got:$line; exit 3'"])
    result = subprocess.run(command_as(podman.user, ["script", "-qec", inner, "/dev/null"]), input="hello\n",
                            capture_output=True, text=True, timeout=120, env=podman.env, cwd=podman.home)
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    # script(1) writes the terminal's EOF character when its stdin ends, and under load that can
    # come after podman made the terminal raw: the pty then echoes a NUL ("^@") into the output.
    lines = [line.replace("^@", "").strip() for line in result.stdout.splitlines()]
    assert "/dev/pts/0" in lines and "stdin-is-a-tty" in lines
    assert "got:hello" in lines, lines


def test_podman_exec(podman: Podman) -> None:
    """conmon runs `exec --detach --pid-file F --process FILE` and keeps the exit status."""
    name = f"rootless-exec-{os.getpid()}"
    podman("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "600", check=True)
    try:
        result = podman("exec", "-e", "FROM_EXEC=yes", name, "sh", "-c",
                        "echo $FROM_EXEC; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 5")
        assert result.returncode == 5, result.stderr
        assert result.stdout.splitlines() == ["yes", "sleep 600 "]
        missing = podman("exec", name, "/no/such/program")
        assert missing.returncode == 127, (missing.returncode, missing.stderr)
        inner = " ".join([*podman.base, "exec", "-it", name, "sh", "-c", "'tty; exit 4'"])
        tty = subprocess.run(command_as(podman.user, ["script", "-qec", inner, "/dev/null"]), capture_output=True,
                             text=True, timeout=120, env=podman.env, cwd=podman.home, stdin=subprocess.DEVNULL)
        assert tty.returncode == 4, (tty.stdout, tty.stderr)
        assert "/dev/pts/" in tty.stdout
    finally:
        podman("rm", "--force", "--time", "0", name)


# The matrix: what a podman user sees, the same with rootless and with runc.

def unique(podman: Podman, what: str) -> str:
    return f"{what}-{podman.name}-{os.getpid()}"


class Detached:
    """A detached container for one test, removed at the end."""

    def __init__(self, podman: Podman, what: str, *args: str, network: str = "none"):
        self.podman, self.name = podman, unique(podman, what)
        podman("run", "-d", "--name", self.name, *(["--network", network] if network else []), *args, check=True)

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc) -> None:
        self.podman("rm", "--force", "--time", "0", self.name)


def inspect(podman: Podman, name: str, template: str) -> str:
    return podman("inspect", "--format", template, name, check=True).stdout.strip()


def wait_for(predicate, timeout: float = 30) -> bool:
    return wait_until(predicate, timeout, interval=0.2)


def volume_dir(podman: Podman, name: str) -> Path:
    path = podman.home / name
    path.mkdir(exist_ok=True)
    os.chown(path, podman.user.uid, podman.user.gid)
    return path


def test_exit_codes(podman: Podman) -> None:
    """The container's code, and 126 for a file that is not executable (127 for none: above;
    137 when killed: test_kill)."""
    run = ("run", "--rm", "--network", "none", IMAGE)
    assert podman(*run, "true").returncode == 0
    assert podman(*run, "sh", "-c", "exit 42").returncode == 42
    assert podman(*run, "/etc/passwd").returncode == 126


def test_logs_hold_only_the_containers_output(podman: Podman) -> None:
    """`podman logs` and the attached output are the container's own, even with the runtime's
    --debug on (podman's --runtime-flag debug): its lines go to the --log file, never to stdio."""
    script = "echo to-stdout; echo to-stderr >&2; sleep 600"
    name = unique(podman, "logs")
    debug = [*podman.base[:-2], "--runtime-flag", "debug", *podman.base[-2:]]
    result = subprocess.run(command_as(podman.user, [*debug, "run", "-d", "--name", name, "--network", "none",
                                                     IMAGE, "sh", "-c", script]),
                            capture_output=True, text=True, timeout=120, env=podman.env, cwd=podman.home)
    try:
        assert result.returncode == 0, result.stderr
        assert wait_for(lambda: "to-stderr" in podman("logs", name).stderr)
        logs = podman("logs", name, check=True)
        assert logs.stdout == "to-stdout\n" and logs.stderr == "to-stderr\n", (logs.stdout, logs.stderr)
    finally:
        podman("rm", "--force", "--time", "0", name)
    attached = subprocess.run(command_as(podman.user, [*debug, "run", "--rm", "--network", "none", IMAGE,
                                                       "sh", "-c", "echo only-this"]),
                              capture_output=True, text=True, timeout=120, env=podman.env, cwd=podman.home)
    assert attached.returncode == 0 and attached.stdout == "only-this\n", (attached.stdout, attached.stderr)


def test_restart(podman: Podman) -> None:
    with Detached(podman, "restart", IMAGE, "sh", "-c", "echo started; sleep 600") as name:
        first = inspect(podman, name, "{{.State.Pid}}")
        podman("restart", "--time", "0", name, check=True)
        assert inspect(podman, name, "{{.State.Status}}") == "running"
        assert inspect(podman, name, "{{.State.Pid}}") != first
        assert wait_for(lambda: podman("logs", name).stdout == "started\nstarted\n")


def test_kill(podman: Podman) -> None:
    """kill -s TERM reaches the container's trap; the default kill is SIGKILL (137)."""
    trap = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"
    with Detached(podman, "kill", IMAGE, "sh", "-c", trap) as name:
        assert wait_for(lambda: podman("logs", name).stdout == "ready\n")
        podman("kill", "--signal", "TERM", name, check=True)
        assert podman("wait", name, check=True).stdout.strip() == "3"
        assert podman("logs", name).stdout == "ready\ngot-term\n"
    with Detached(podman, "kill9", IMAGE, "sleep", "600") as name:
        podman("kill", name, check=True)
        assert podman("wait", name, check=True).stdout.strip() == "137"
        assert inspect(podman, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


def test_cp(podman: Podman) -> None:
    source = podman.home / f"cp-in-{podman.name}"
    source.write_text("copied in\n")
    os.chown(source, podman.user.uid, podman.user.gid)
    out = volume_dir(podman, f"cp-out-{podman.name}")
    with Detached(podman, "cp", IMAGE, "sh", "-c", "echo made inside > /tmp/made; sleep 600") as name:
        podman("cp", str(source), f"{name}:/tmp/in", check=True)
        assert podman("exec", name, "cat", "/tmp/in", check=True).stdout == "copied in\n"
        assert wait_for(lambda: podman("exec", name, "cat", "/tmp/made").stdout == "made inside\n")
        podman("cp", f"{name}:/tmp/made", str(out), check=True)
        assert (out / "made").read_text() == "made inside\n"


def test_commit(podman: Podman) -> None:
    image = f"localhost/committed-{podman.name}"
    with Detached(podman, "commit", IMAGE, "sh", "-c", "echo kept > /kept; sleep 600") as name:
        assert wait_for(lambda: podman("exec", name, "cat", "/kept").stdout == "kept\n")
        podman("commit", name, image, check=True)
    try:
        assert podman("run", "--rm", "--network", "none", image, "cat", "/kept", check=True).stdout == "kept\n"
    finally:
        podman("rmi", "--force", image)


def test_healthcheck(podman: Podman) -> None:
    """podman runs the check through the runtime's exec (no systemd timer: interval disabled)."""
    with Detached(podman, "health", "--health-cmd", "test -e /tmp/ok", "--health-interval", "disable",
                  "--health-retries", "1", IMAGE, "sleep", "600") as name:
        assert podman("healthcheck", "run", name).returncode == 1
        assert inspect(podman, name, "{{.State.Healthcheck.Status}}") == "unhealthy"
        podman("exec", name, "touch", "/tmp/ok", check=True)
        assert podman("healthcheck", "run", name).returncode == 0
        assert inspect(podman, name, "{{.State.Healthcheck.Status}}") == "healthy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_published_port_with_curl(podman: Podman) -> None:
    if shutil.which("slirp4netns") is None:
        pytest.skip("slirp4netns is missing (rootless podman 4.3's network)")
    port = free_port()
    serve = "mkdir /www && echo hello-http > /www/index.html && exec httpd -f -p 80 -h /www"
    with Detached(podman, "port", "-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c", serve, network=""):
        def fetched() -> bool:
            got = subprocess.run(["curl", "-s", "--max-time", "5", f"http://127.0.0.1:{port}/"],
                                 capture_output=True, text=True)
            return got.stdout == "hello-http\n"
        assert wait_for(fetched, timeout=60)


def test_userns_keep_id(podman: Podman) -> None:
    out = podman("run", "--rm", "--network", "none", "--userns", "keep-id", IMAGE,
                 "sh", "-c", "id -u; id -g; ls -ln -d /proc/1/root/.", check=True).stdout.splitlines()
    assert out[:2] == [str(podman.user.uid), str(podman.user.gid)]


def test_uidmap(podman: Podman) -> None:
    out = podman("run", "--rm", "--network", "none", "--uidmap", "0:1:1000", "--gidmap", "0:1:1000", IMAGE,
                 "sh", "-c", "cat /proc/self/uid_map; id -u", check=True).stdout.split()
    # podman's own namespace maps 1 to the first subordinate ID: 0 1 1000 is relative to it.
    assert out[:3] == ["0", "1", "1000"] and out[3] == "0"


def test_read_only(podman: Podman) -> None:
    script = "touch /x 2>/dev/null && echo root-writable; touch /tmp/x && echo tmp-writable"
    out = podman("run", "--rm", "--network", "none", "--read-only", IMAGE, "sh", "-c", script).stdout
    assert out == "tmp-writable\n"


def test_tmpfs(podman: Podman) -> None:
    out = podman("run", "--rm", "--network", "none", "--tmpfs", "/scratch:size=1m,mode=1770", IMAGE, "sh", "-c",
                 "stat -c %a /scratch; grep ' /scratch ' /proc/self/mounts | cut -d' ' -f3", check=True).stdout
    assert out.split() == ["1770", "tmpfs"]


def test_volume_read_only(podman: Podman) -> None:
    vol = volume_dir(podman, "vol-ro")
    (vol / "f").write_text("seen\n")
    out = podman("run", "--rm", "--network", "none", "-v", f"{vol}:/v:ro", IMAGE, "sh", "-c",
                 "cat /v/f; touch /v/g 2>/dev/null || echo refused").stdout
    assert out == "seen\nrefused\n"


def podman_ns(podman: Podman, script: str) -> subprocess.CompletedProcess:
    """A shell script in podman's own user and mount namespace (where the runtime runs)."""
    return subprocess.run(command_as(podman.user, [*podman.base, "unshare", "sh", "-c", script]), capture_output=True,
                          text=True, timeout=60, env=podman.env, cwd=podman.home)


@pytest.fixture
def shared_volume(podman: Podman):
    """A folder that is a shared mount in podman's namespace (this host's / is private there),
    with empty in/ and out/ below; the mounts made during the test are removed after it."""
    vol = volume_dir(podman, f"vol-shared-{os.getpid()}")
    for sub in ("in", "out"):
        (vol / sub).mkdir(exist_ok=True)
        os.chown(vol / sub, podman.user.uid, podman.user.gid)
    made = podman_ns(podman, f"mount --bind {vol} {vol} && mount --make-shared {vol}")
    assert made.returncode == 0, made.stderr
    yield vol
    podman_ns(podman, f"umount {vol}/in {vol}/out 2>/dev/null; umount -l {vol}")


@pytest.mark.parametrize("propagation", ["rslave", "rshared"])
def test_volume_propagation(podman: Podman, shared_volume: Path, propagation: str) -> None:
    """A mount made beside podman after the start reaches the container (rslave and rshared);
    one made by the container reaches podman's namespace with rshared only."""
    vol = shared_volume
    inner = "sleep 1; mount -t tmpfs tmpfs /v/out && touch /v/out/from-container; sleep 600"
    with Detached(podman, propagation, "--cap-add", "SYS_ADMIN", "-v", f"{vol}:/v:{propagation}",
                  IMAGE, "sh", "-c", inner) as name:
        mounted = podman_ns(podman, f"mount -t tmpfs tmpfs {vol}/in && touch {vol}/in/from-podman")
        assert mounted.returncode == 0, mounted.stderr
        assert wait_for(lambda: podman("exec", name, "ls", "/v/in").stdout == "from-podman\n")
        assert wait_for(lambda: podman("exec", name, "ls", "/v/out").stdout == "from-container\n")
        time.sleep(0.5)
        seen = podman_ns(podman, f"ls {vol}/out").stdout
        assert seen == ("from-container\n" if propagation == "rshared" else ""), seen
        tags = podman("exec", name, "grep", " /v ", "/proc/self/mountinfo", check=True).stdout
        assert ("shared:" in tags) == (propagation == "rshared"), tags


def test_volume_idmap(podman: Podman) -> None:
    """-v DIR:DST:idmap without mappings: the container's own user namespace is meant (current
    runc). Rootless podman's is its own, and the kernel lets no unprivileged user idmap the
    host's filesystem: rootless refuses (current runc refuses too, as no user namespace is in
    the config), runc 1.1.5 ignores the option and binds plainly (docs/differences-from-runc.md)."""
    vol = volume_dir(podman, "vol-idmap")
    result = podman("run", "--rm", "--network", "none", "-v", f"{vol}:/v:idmap", IMAGE, "stat", "-c", "%u", "/v")
    if podman.name == "runc":
        assert (result.returncode, result.stdout) == (0, "0\n"), result.stderr
    else:
        assert result.returncode == 126, (result.returncode, result.stdout, result.stderr)
        assert "mount_setattr(MOUNT_ATTR_IDMAP)" in result.stderr and "Operation not permitted" in result.stderr


def test_device(podman: Podman) -> None:
    """podman binds the device and sets rootfsPropagation rslave."""
    out = podman("run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull", IMAGE, "sh", "-c",
                 "stat -c '%t:%T %a' /dev/xnull; echo x > /dev/xnull && echo written", check=True).stdout
    assert out == "1:3 666\nwritten\n"


def full_capabilities() -> str:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return f"{(1 << (last + 1)) - 1:016x}"


def test_privileged(podman: Podman) -> None:
    out = podman("run", "--rm", "--network", "none", "--privileged", IMAGE, "sh", "-c",
                 "grep -E '^Cap(Eff|Bnd)' /proc/self/status | cut -f2; stat -c '%t:%T' /dev/kmsg",
                 check=True).stdout.split()
    # Every capability the kernel has, and the host's devices (podman leaves ttys out).
    assert out == [full_capabilities()] * 2 + ["1:b"], out


def test_cap_add_and_drop(podman: Podman) -> None:
    only = podman("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--cap-add", "NET_RAW,CHOWN", IMAGE,
                  "grep", "CapEff", "/proc/self/status", check=True).stdout.split()[1]
    assert int(only, 16) == (1 << 13) | (1 << 0)  # CAP_NET_RAW, CAP_CHOWN
    dropped = podman("run", "--rm", "--network", "none", "--cap-drop", "CHOWN", IMAGE, "chown", "1:1", "/tmp")
    assert dropped.returncode == 1 and "Operation not permitted" in dropped.stderr


def test_init(podman: Podman) -> None:
    if not os.path.exists("/usr/libexec/podman/catatonit"):
        pytest.skip("catatonit is missing (podman's --init; tests/run installs it)")
    out = podman("run", "--rm", "--network", "none", "--init", IMAGE, "sh", "-c",
                 "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$", check=True).stdout.splitlines()
    assert out[0].startswith("/run/podman-init -- sh") and out[1] != "1"


def netns_of(podman: Podman, name: str) -> str:
    return podman("exec", name, "readlink", "/proc/self/ns/net", check=True).stdout.strip()


def test_pod_shares_a_network_namespace(podman: Podman) -> None:
    if not os.path.exists("/usr/libexec/podman/catatonit"):
        pytest.skip("catatonit is missing (podman builds the pod's pause image from it; tests/run installs it)")
    pod = unique(podman, "pod")
    podman("pod", "create", "--name", pod, "--network", "none", check=True)
    try:
        first, second = unique(podman, "pod-a"), unique(podman, "pod-b")
        serve = "mkdir /www && echo from-a > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"
        podman("run", "-d", "--pod", pod, "--name", first, IMAGE, "sh", "-c", serve, check=True)
        podman("run", "-d", "--pod", pod, "--name", second, IMAGE, "sleep", "600", check=True)
        assert netns_of(podman, first) == netns_of(podman, second)
        request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1"
        assert wait_for(lambda: podman("exec", second, "sh", "-c", request).stdout == "from-a\n")
        with Detached(podman, "outside", IMAGE, "sleep", "600") as outside:
            assert netns_of(podman, outside) != netns_of(podman, first)
    finally:
        podman("pod", "rm", "--force", "--time", "0", pod)


KUBE = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {image}
    command: ["/bin/sh", "-c", "echo kube-says-hi; id -u; sleep 600"]
"""


def test_play_kube(podman: Podman) -> None:
    if not os.path.exists("/usr/libexec/podman/catatonit"):
        pytest.skip("catatonit is missing (podman builds the pod's pause image from it; tests/run installs it)")
    name = unique(podman, "kube")
    spec = podman.home / f"{name}.yaml"
    spec.write_text(KUBE.format(name=name, image=IMAGE))
    os.chown(spec, podman.user.uid, podman.user.gid)
    podman("play", "kube", "--network", "none", str(spec), check=True)
    try:
        container = f"{name}-main"
        assert wait_for(lambda: podman("logs", container).stdout == "kube-says-hi\n0\n")
        assert inspect(podman, container, "{{.State.Status}}") == "running"
        assert podman("pod", "inspect", "--format", "{{.State}}", name, check=True).stdout.strip() == "Running"
    finally:
        podman("play", "kube", "--down", str(spec))
    assert name not in podman("pod", "ps", "--format", "{{.Name}}").stdout


REPO = Path(__file__).resolve().parents[2]


def test_runtime_by_name_through_the_drop_in(podman: Podman, rootless_bin: str) -> None:
    """packaging/install-podman-conf puts the snippet in the user's containers.conf.d: podman
    then knows `--runtime rootless` by name, passes it --log (an error reaches podman's message
    and exit code) and --cgroup-manager disabled for --cgroups=disabled. runc, which the snippet
    lists again in runtime_supports_json, keeps working by name as before (and podman keeps
    refusing it --cgroups=disabled, which runc does not take)."""
    home = Path(tempfile.mkdtemp(prefix="podman-home-", dir=podman.home))
    script = REPO / "packaging" / "install-podman-conf"
    # The clone may be closed to the test user: the script and the snippet run from a copy.
    copy = home / "packaging"
    (copy / "containers.conf.d").mkdir(parents=True)
    shutil.copy(script, copy / "install-podman-conf")
    shutil.copy(REPO / "packaging" / "containers.conf.d" / "rootless.conf", copy / "containers.conf.d")
    chown_tree(home, podman.user)
    env = clean_env(podman.user, {"HOME": str(home)})
    installed = subprocess.run(command_as(podman.user, [str(copy / "install-podman-conf"), rootless_bin]),
                               capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert installed == f"{home}/.config/containers/containers.conf.d/rootless.conf"
    (Path(installed).parent / "00-tests.conf").write_text('[engine]\nevents_logger = "file"\n'
                                                          '[containers]\nlog_driver = "k8s-file"\n')
    chown_tree(home, podman.user)
    assert podman.base[-2] == "--runtime"
    base = [*podman.base[:-1], podman.name]

    def by_name(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(command_as(podman.user, [*base, *args]), capture_output=True, text=True,
                              timeout=120, env=env, cwd=home, stdin=subprocess.DEVNULL)

    info = by_name("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")
    name, path = info.stdout.split()
    assert name == podman.name and os.path.realpath(path) == os.path.realpath(podman.runtime_bin), info
    assert by_name("run", "--rm", "--network", "none", IMAGE, "echo", "by-name").stdout == "by-name\n"
    nocgroup = by_name("run", "--rm", "--network", "none", "--cgroups", "disabled", IMAGE, "echo", "no-cgroup")
    if podman.name == "rootless":
        assert nocgroup.stdout == "no-cgroup\n", nocgroup.stderr
    else:
        assert nocgroup.returncode == 125 and "not compatible with NoCgroups" in nocgroup.stderr, nocgroup.stderr
    missing = by_name("run", "--rm", "--network", "none", IMAGE, "/no/such/program")
    assert missing.returncode == 127 and 'exec: "/no/such/program"' in missing.stderr, missing.stderr
