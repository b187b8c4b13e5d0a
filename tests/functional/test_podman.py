"""podman drives rootless: `podman --runtime $(command -v rootless)` as the unprivileged test
user, with Debian's podman and conmon and an image imported from the busybox rootfs.

podman runs the runtime inside its own user namespace as UID 0, with no ID maps in config.json,
its default seccomp profile, and conmon's pipes as stdio (see shared/PODMAN.md)."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

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
        self.runroot = Path(user.runtime_dir) / f"rootless-podman-{os.getpid()}"
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


@pytest.fixture(scope="module")
def podman(rootless_bin: str, test_user: User, busybox_rootfs_tar: Path, scratch_root: Path) -> Podman:
    home = Path(tempfile.mkdtemp(prefix="podman-", dir=scratch_root))
    os.chmod(home, 0o755)
    shutil.copy(busybox_rootfs_tar, home / "rootfs.tar")
    client = Podman(test_user, rootless_bin, home)
    client("import", str(home / "rootfs.tar"), IMAGE, check=True)
    yield client
    client("rm", "--all", "--force", timeout=120)
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
    assert "got:hello" in lines


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
