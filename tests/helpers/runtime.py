"""The runtime under test, run as the test user (rootless mode) or as root (root mode)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from helpers import leaks
from helpers.bundle import make_bundle, make_config
from helpers.users import User, chown_tree, clean_env, command_as

MODES = ("rootless", "root")

# Debian 12's runc, for tests of this harness and side-by-side comparisons.
RUNC = "/usr/sbin/runc"

# On hosts with cgroup v1 the memory controller at /sys/fs/cgroup/memory holds the machine's own
# supervisor, and must not be written to. A runtime running as root (runc does) makes a cgroup
# per container in every controller it finds; root-mode commands therefore run in a private
# mount namespace in which that controller is unmounted, so no runtime finds it.
MEMORY_CGROUP_V1 = "/sys/fs/cgroup/memory"
_HIDE_MEMORY_CGROUP = ["unshare", "--mount", "--propagation", "private", "--",
                       "sh", "-c", f'umount -l {MEMORY_CGROUP_V1} && exec "$@"', "sh"]


def without_memory_cgroup(argv: list[str]) -> list[str]:
    """`argv` (run as root) in a private mount namespace without the v1 memory controller, on
    hosts that mount one; unchanged elsewhere."""
    return _HIDE_MEMORY_CGROUP + argv if os.path.ismount(MEMORY_CGROUP_V1) else argv


class RuntimeFailed(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class Runtime:
    """One runtime binary, one user, one state root, one scratch folder: one test's worth.

    mode        "rootless" (run as `user`, an unprivileged user) or "root"
    binary      the runtime executable; tests may set it (RUNC) to run another runtime
    state_root  passed as --root; belongs to `user`
    work_dir    this test's scratch folder (bundles); belongs to `user`
    rootfs      the shared busybox rootfs that bundles point at
    """

    def __init__(self, mode: str, user: User, binary: str | None, state_root: Path, work_dir: Path, rootfs: Path):
        assert mode in MODES, mode
        self.mode, self.user, self.binary = mode, user, binary
        self.state_root, self.work_dir, self.rootfs = state_root, work_dir, rootfs
        self._popens: list[subprocess.Popen] = []

    @property
    def rootless(self) -> bool:
        return self.mode == "rootless"

    def command(self, *args: str) -> list[str]:
        """The argv that runs `binary --root STATE_ROOT ARGS...` as this runtime's user."""
        if self.binary is None:
            pytest.skip("the rootless command is not installed: run tests/run (or set ROOTLESS_BIN)")
        argv = command_as(self.user, [self.binary, "--root", str(self.state_root), *map(str, args)])
        return without_memory_cgroup(argv) if self.user.is_root else argv

    def python_command(self, code: str) -> list[str]:
        """The argv that runs Python `code` with the runtime's own interpreter (its venv, where
        the project is installed), as this runtime's user."""
        python = os.path.join(os.path.dirname(self.binary), "python")
        return command_as(self.user, [python, "-c", code])

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        return clean_env(self.user, env)

    def run(self, *args: str, input: str | None = None, timeout: float = 60, check: bool = False,
            env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = (),
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run the runtime to completion; stdout and stderr are captured as text.

        Output goes through files, not pipes: a container started by `create` or `run -d`
        inherits them, and waiting for a pipe's end would wait for the container."""
        argv = self.command(*args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(argv, input=input, stdin=subprocess.DEVNULL if input is None else None,
                                  stdout=out, stderr=err, text=True, timeout=timeout, env=self._env(env),
                                  pass_fds=pass_fds, cwd=cwd or self.work_dir)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(argv, proc.returncode, out.read().decode(errors="replace"),
                                                 err.read().decode(errors="replace"))
        if check and result.returncode != 0:
            raise RuntimeFailed(result.returncode, argv, result.stdout, result.stderr)
        return result

    def popen(self, *args: str, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.PIPE,
              stderr: Any = subprocess.PIPE, text: bool = True, env: dict[str, str] | None = None,
              pass_fds: tuple[int, ...] = (), cwd: Path | None = None) -> subprocess.Popen:
        """Start the runtime in the background; killed at teardown if still running."""
        proc = subprocess.Popen(self.command(*args), stdin=stdin, stdout=stdout, stderr=stderr, text=text,
                                env=self._env(env), pass_fds=pass_fds, cwd=cwd or self.work_dir)
        self._popens.append(proc)
        return proc

    def bundle(self, args: list[str], *, terminal: bool = False, **overrides: Any) -> Path:
        """A new bundle in work_dir for this mode (make_config's rootless or root config)."""
        folder = Path(tempfile.mkdtemp(prefix="bundle-", dir=self.work_dir))
        os.chmod(folder, 0o755)
        chown_tree(folder, self.user)
        config = make_config(args, rootless=self.rootless, terminal=terminal, **overrides)
        return make_bundle(folder, config, self.rootfs)

    def run_script(self, script: str, **overrides: Any) -> str:
        """Run `sh -c script` in a new container of this mode (overrides as for bundle), check
        that it exited 0 and left nothing behind, and return what it printed."""
        bundle = self.bundle(["sh", "-c", script], **overrides)
        container_id = self.new_id()
        result = self.run("run", "--bundle", bundle, container_id)
        assert result.returncode == 0, result.stderr
        self.assert_no_leaks(container_id, bundle=bundle)
        return result.stdout

    @staticmethod
    def new_id(prefix: str = "t") -> str:
        """A container id no other test or stray process uses."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def state(self, container_id: str) -> dict:
        return json.loads(self.run("state", container_id, check=True).stdout)

    def wait_for_status(self, container_id: str, status: str, timeout: float = 10) -> dict:
        """Poll `state` until the status is `status`; returns the last state either way."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run("state", container_id)
            if result.returncode == 0:  # a background `run` may not have created it yet
                state = json.loads(result.stdout)
                if state["status"] == status:
                    return state
            if time.monotonic() > deadline:
                return self.state(container_id)
            time.sleep(0.02)

    def state_dir(self, container_id: str) -> Path:
        return self.state_root / container_id

    def assert_no_leaks(self, container_id: str, *, bundle: Path | None = None, pids: tuple[int, ...] = ()) -> None:
        leaks.assert_no_leaks(container_id, state_dir=self.state_dir(container_id), bundle=bundle, pids=pids)

    def cleanup(self) -> list[str]:
        """Kill background runtimes, delete -f every container left, remove the state root and
        the scratch folder. Returns what was wrong, for a warning."""
        problems: list[str] = []
        for proc in self._popens:
            if proc.poll() is None:
                proc.kill()
                problems.append(f"killed background runtime {proc.args}")
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                problems.append(f"background runtime {proc.pid} did not exit after SIGKILL")
        if self.binary is not None and self.state_root.exists():
            listed = self._cleanup_run(problems, "list", "-q")
            for container_id in listed.split() if listed is not None else ():
                self._cleanup_run(problems, "delete", "-f", container_id)
        problems += _kill_processes_mentioning(self.state_root, self.work_dir)
        for path in (self.state_root, self.work_dir):
            problems += remove_tree(path)
        return problems

    def _cleanup_run(self, problems: list[str], *args: str) -> str | None:
        """stdout of a runtime command, or None with the failure noted in `problems`."""
        try:
            result = self.run(*args, timeout=30)
        except subprocess.TimeoutExpired:
            problems.append(f"{' '.join(args)}: timed out")
            return None
        if result.returncode != 0:
            problems.append(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
            return None
        return result.stdout


def wait_until(predicate, timeout: float = 20, interval: float = 0.05) -> bool:
    """Poll predicate until it holds (True) or timeout seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def _kill_processes_mentioning(*paths: Path) -> list[str]:
    """SIGKILL processes that name these folders (a runtime or helper left running). Not every
    process of the test user: another test session may share it."""
    problems = []
    for pid, cmdline in leaks.processes_mentioning(*map(str, paths)):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        problems.append(f"killed stray process {pid}: {cmdline}")
    return problems


def remove_tree(path: Path) -> list[str]:
    """rm -rf, except that nothing is removed below a mount point (a leaked bind mount of a
    host folder must not be emptied). Returns what could not be removed."""
    if not os.path.lexists(path):
        return []
    mounted = leaks.mounts_under(path)
    if mounted:
        return [f"left {path} in place: mounted under it: {', '.join(mounted)}"]
    errors: list[str] = []
    shutil.rmtree(path, onerror=lambda _f, p, e: errors.append(f"cannot remove {p}: {e[1]}"))
    return errors[:3]
