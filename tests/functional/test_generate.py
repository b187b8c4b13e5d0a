"""`rootless generate systemd ID|--bundle DIR`: the unit's text for a container id and for a
bundle, and its command lines run as systemd runs them (this host has no systemd as PID 1: the
test plays its part, with a NOTIFY_SOCKET of its own), so the quoting and the stop signal are
checked on a real container; errors in one line. The unit under a real user manager (start,
crash, stop, boot) is tests/vm/test_vm_units.py."""

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import static
from helpers.bundle import make_config
from helpers.runtime import Runtime

# A bundle folder as a user may name one: systemd reads spaces, quotes, % and $ in a unit.
AWKWARD = "my bundle %n $HOME 'q' \"dq\""


@pytest.fixture(scope="module")
def sdnotify() -> Path:
    with static.built("sdnotify") as binary:
        yield binary


@pytest.fixture
def notify_socket(runtime: Runtime):
    from test_notify import NotifySocket
    sock = NotifySocket(runtime)
    yield sock
    sock.close()


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's settings by section, in order (comments and blank lines skipped)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key, value))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit[section] if k == key]


def command_words(value: str) -> tuple[str, list[str]]:
    """An Exec*= value as systemd reads it: (prefix, argv). shlex reads double quotes and their
    backslash escapes as systemd does; then "%%" and "$$" are one character again."""
    prefix = value[:len(value) - len(value.lstrip("-@:+!"))]
    return prefix, [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value[len(prefix):])]


def run_as_systemd(runtime: Runtime, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """A runtime command line of the unit, run as the unit's user: the unit calls the same
    binary with the same --root as the test's runtime (checked), so runtime.run runs the rest."""
    assert argv[:3] == [runtime.binary, "--root", str(runtime.state_root)], argv
    return runtime.run(*argv[3:], **kwargs)


def awkward_bundle(runtime: Runtime, sdnotify: Path, script: str, **overrides) -> tuple[Path, Path]:
    """A bundle in a folder named AWKWARD running `sh -c script` with /sdnotify and a host
    folder at /out; (bundle, out)."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=runtime.work_dir))
    os.chown(out, runtime.user.uid, runtime.user.gid)
    mounts = make_config([], rootless=runtime.rootless)["mounts"] + [
        {"destination": "/sdnotify", "type": "bind", "source": str(sdnotify), "options": ["bind", "ro"]},
        {"destination": "/out", "type": "bind", "source": str(out), "options": ["bind"]},
    ]
    made = runtime.bundle(["sh", "-c", script], mounts=mounts, **overrides)
    bundle = made.parent / AWKWARD
    made.rename(bundle)
    return bundle, out


def verify(path: Path) -> None:
    """systemd-analyze's own reading of the unit, where the host has it."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_unit_for_a_bundle_runs_it_as_systemd_would(runtime: Runtime, sdnotify: Path, notify_socket) -> None:
    # sh is the init: it handles the stop signal (PID 1 of a namespace ignores what it does not handle).
    script = ("trap 'echo QUIT > /out/stopped; exit 0' QUIT; sleep 0.5; touch /out/marker; /sdnotify READY=1; "
              "sleep 600 & wait")
    bundle, out = awkward_bundle(runtime, sdnotify, script,
                                 annotations={"org.opencontainers.image.stopSignal": "quit"})
    container_id = runtime.new_id()
    where = Path(tempfile.mkdtemp(prefix="units-", dir=runtime.work_dir))
    os.chown(where, runtime.user.uid, runtime.user.gid)
    written = runtime.run("generate", "systemd", "--bundle", bundle, "--name", container_id, "--stop-timeout", "7",
                          "--start-timeout", "120", "--files", cwd=where, check=True).stdout
    path = where / f"container-{container_id}.service"
    assert written == f"{path}\n" and path.is_file()
    verify(path)
    unit = parse_unit(path.read_text())
    service = dict(unit["Service"])
    assert values(unit, "Unit", "Description") == [f"rootless container {container_id}"]
    assert {k: service[k] for k in ("Type", "NotifyAccess", "KillMode", "KillSignal", "SuccessExitStatus",
                                    "TimeoutStopSec", "TimeoutStopFailureMode", "TimeoutStartSec", "Restart",
                                    "Delegate")} == {
        "Type": "notify", "NotifyAccess": "main", "KillMode": "mixed", "KillSignal": "SIGQUIT",
        "SuccessExitStatus": "SIGQUIT", "TimeoutStopSec": "7", "TimeoutStopFailureMode": "kill",
        "TimeoutStartSec": "120", "Restart": "on-failure", "Delegate": "yes"}
    assert values(unit, "Install", "WantedBy") == ["default.target"]
    prefix, start = command_words(service["ExecStart"])
    assert prefix == "" and start[3:] == ["--cgroup-manager", "cgroupfs", "run", "--detach", "--bundle", str(bundle),
                                          container_id]
    (kill_prefix, kill), (wait_prefix, wait) = [command_words(v) for v in values(unit, "Service", "ExecStop")]
    assert kill_prefix == wait_prefix == "-" and kill[3:] == ["kill", container_id, "SIGQUIT"]
    post_prefix, post = command_words(service["ExecStopPost"])
    assert post_prefix == "-" and post[3:] == ["delete", "--force", container_id]

    # systemd's part: ExecStart with NOTIFY_SOCKET returns once the container said READY=1.
    run_as_systemd(runtime, start, env={"NOTIFY_SOCKET": str(notify_socket.path)}, check=True)
    assert (out / "marker").exists()
    pid = runtime.state(container_id)["pid"]
    assert notify_socket.received() == ["READY=1", f"MAINPID={pid}"]
    # stop: the stop signal through the runtime, then the wait for the main PID ($MAINPID).
    run_as_systemd(runtime, kill, check=True)
    waited = subprocess.run([w.replace("${MAINPID}", str(pid)) for w in wait], capture_output=True, timeout=30)
    assert waited.returncode == 0 and (out / "stopped").read_text() == "QUIT\n"
    run_as_systemd(runtime, post, check=True)
    assert runtime.run("state", container_id).returncode == 1
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


def test_unit_for_an_id_runs_the_bundle_of_its_state(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("create", "--bundle", bundle, container_id, check=True)
    text = runtime.run("generate", "systemd", container_id, check=True).stdout
    unit = parse_unit(text)
    service = dict(unit["Service"])
    assert command_words(service["ExecStart"])[1] == [
        runtime.binary, "--root", str(runtime.state_root), "--cgroup-manager", "cgroupfs", "run", "--detach",
        "--bundle", str(bundle), container_id]
    # No stop signal in the config: SIGTERM, a clean exit for systemd already; the defaults.
    assert command_words(values(unit, "Service", "ExecStop")[0])[1][3:] == ["kill", container_id, "SIGTERM"]
    assert (service["KillSignal"], service["TimeoutStopSec"], service["Restart"]) == ("SIGTERM", "10", "on-failure")
    assert "SuccessExitStatus" not in service and "TimeoutStartSec" not in service
    # The same unit as from the bundle with the id as its name.
    from_bundle = runtime.run("generate", "systemd", "--bundle", bundle, "--name", container_id, check=True).stdout
    assert from_bundle == text
    always = runtime.run("generate", "systemd", "--restart-policy", "always", container_id, check=True).stdout
    assert dict(parse_unit(always)["Service"])["Restart"] == "always"
    runtime.run("delete", "--force", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_sdnotify_runtime_is_a_forking_unit_with_the_init_s_pid_file(runtime: Runtime) -> None:
    """For a container that does not speak sd_notify: active once its process started."""
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    text = runtime.run("generate", "systemd", "--bundle", bundle, "--name", container_id, "--sdnotify", "runtime",
                       check=True).stdout
    service = dict(parse_unit(text)["Service"])
    pid_file = f"%t/container-{container_id}.pid"  # %t: the manager's runtime directory
    assert (service["Type"], service["PIDFile"]) == ("forking", pid_file) and "NotifyAccess" not in service
    start = command_words(service["ExecStart"])[1]
    assert start[3:] == ["--cgroup-manager", "cgroupfs", "run", "--detach", "--pid-file", pid_file, "--bundle",
                         str(bundle), container_id]
    # systemd's part: %t expanded, no NOTIFY_SOCKET; ExecStart returns with the container running.
    folder = Path(tempfile.mkdtemp(prefix="t-", dir=runtime.work_dir))
    os.chown(folder, runtime.user.uid, runtime.user.gid)
    run_as_systemd(runtime, [w.replace("%t", str(folder)) for w in start], check=True)
    pid = runtime.state(container_id)["pid"]
    assert (folder / f"container-{container_id}.pid").read_text() == str(pid)
    assert runtime.state(container_id)["status"] == "running"
    runtime.run("delete", "--force", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle)
    assert "invalid --sdnotify 'conmon'" in runtime.run("generate", "systemd", "--bundle", bundle, "--name", "x",
                                                        "--sdnotify", "conmon").stderr


def test_errors_are_one_line(runtime: Runtime) -> None:
    def error(*args: str) -> str:
        result = runtime.run("generate", *args)
        assert result.returncode != 0 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, result.stderr
        return result.stderr.strip()

    missing = runtime.new_id()
    assert error("systemd", missing) == f"rootless: container does not exist: {missing}"  # runc's words
    assert "give a container ID or --bundle DIR" in error("systemd")
    bundle = runtime.bundle(["true"])
    assert "give a container ID or --bundle DIR" in error("systemd", "--bundle", str(bundle), "x")
    assert "only `generate systemd`" in error("docker", "x")
    unnamed = bundle.rename(bundle.parent / "not an id")
    assert "cannot be a container ID: give one with --name" in error("systemd", "--bundle", str(unnamed))
    bundle = unnamed
    assert "no such directory" in error("systemd", "--bundle", str(runtime.work_dir / "nowhere"), "--name", "x")
    assert "invalid --restart-policy 'sometimes'" in error("systemd", "--bundle", str(bundle), "--name", "x",
                                                           "--restart-policy", "sometimes")
    assert "a number of seconds" in error("systemd", "--bundle", str(bundle), "--name", "x", "--stop-timeout", "soon")
    bad_signal = runtime.bundle(["true"], annotations={"org.opencontainers.image.stopSignal": "SIGNOPE"})
    assert "annotation org.opencontainers.image.stopSignal: invalid signal 'SIGNOPE'" in error(
        "systemd", "--bundle", str(bad_signal), "--name", "x")
    terminal = runtime.bundle(["sh"], terminal=True)
    assert "process.terminal true, but a service has no terminal" in error("systemd", "--bundle", str(terminal),
                                                                           "--name", "x")
