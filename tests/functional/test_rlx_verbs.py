"""rlx's container verbs as the unprivileged test user, through the real `rlx` command: a
detached container (`run -d`, rootless/rlx/run.py) seen by ps, logs -f, exec (-it in a real
pty), stop (the image's stop signal, then KILL), kill, wait, attach, port, inspect, rm (which
leaves nothing), shell completion naming a running container, colours only on a terminal and
never with NO_COLOR, and one line for an unknown name."""

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from helpers.images import free_port, rootfs_layer, write_oci_layout
from helpers.leaks import mounts_under, processes_mentioning
from helpers.rlx import Rlx
from helpers.terminal import HeldTerminal
from helpers.users import User, command_as

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run rlx as the test user")

IMAGE = "localhost/verbs:1"
# The image's StopSignal is USR1, so a stop that sends it (and not TERM) is seen.
CONFIG = {"config": {"Cmd": ["/bin/sh"], "StopSignal": "SIGUSR1"}}
WAIT_FOR_GO = "while [ ! -e /tmp/go ]; do sleep 0.1; done"
ESC = "\033["


@pytest.fixture(scope="module")
def image_layout(scratch_root: Path, busybox_rootfs: Path) -> Path:
    folder = write_oci_layout(scratch_root / "verbs-image", [rootfs_layer(busybox_rootfs)], CONFIG)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return folder


@pytest.fixture
def rlx(rootless_runtime, test_user: User, image_layout: Path) -> Rlx:
    binary = os.path.join(os.path.dirname(rootless_runtime.binary), "rlx")
    home = rootless_runtime.work_dir / "home"
    home.mkdir()
    tool = Rlx(test_user, binary, home)
    tool.run("load", "--name", IMAGE, image_layout)
    yield tool
    for row in json.loads(tool.run("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        tool.run("rm", "-f", row["Id"], check=False)
    tool.run("rmi", "--all", check=False)


def detached(rlx: Rlx, name: str, script: str, *options: str) -> str:
    """A detached container running `sh -c script`; its full ID."""
    result = rlx.run("run", "-d", "--name", name, "--network", "none", *options, IMAGE, "sh", "-c", script)
    container_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id), result.stdout
    return container_id


def ps_json(rlx: Rlx, *options: str) -> dict[str, dict]:
    return {row["Names"][0]: row for row in json.loads(rlx.run("ps", *options, "--format", "json").stdout)}


def wait_for_log(rlx: Rlx, name: str, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = rlx.run("logs", name).stdout
        if text in out or time.monotonic() > deadline:
            assert text in out, out
            return out
        time.sleep(0.1)


def test_detached_container_in_ps_table_and_json(rlx: Rlx) -> None:
    container_id = detached(rlx, "web", "echo ready; sleep 1000")
    table = rlx.run("ps").stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    line = next(row for row in table if row.endswith("web"))
    assert line.startswith(container_id[:12]) and IMAGE in line and "sh -c echo ready; sleep 1000" in line
    assert re.search(r"Up (Less than a second|\d+ seconds?)", line), line
    row = ps_json(rlx)["web"]
    assert row["Id"] == container_id and row["State"] == "running" and row["Image"] == IMAGE
    assert row["Command"] == ["sh", "-c", "echo ready; sleep 1000"] and row["Pid"] > 0
    assert rlx.run("ps", "-q").stdout.split() == [container_id[:12]]
    rlx.run("kill", "web")
    assert rlx.run("wait", "web").stdout.strip() == "137"
    assert "web" not in ps_json(rlx)  # ps shows only running containers without -a
    stopped = ps_json(rlx, "-a")["web"]
    assert stopped["State"] == "exited" and stopped["ExitCode"] == 137
    assert re.match(r"Exited \(137\) (Less than a second|\d+ seconds?) ago", stopped["Status"]), stopped


def test_a_foreground_container_after_it_ran(rlx: Rlx) -> None:
    """No -d: the runtime's container is gone once it exits; its record keeps the exit code."""
    assert rlx.run("run", "--name", "fg", "--network", "none", IMAGE, "sh", "-c", "exit 6", check=False).returncode == 6
    row = ps_json(rlx, "-a")["fg"]
    assert row["State"] == "exited" and row["ExitCode"] == 6 and row["Status"].startswith("Exited (6) ")
    assert rlx.run("wait", "fg").stdout == "6\n"
    no_log = rlx.run("logs", "fg", check=False)
    assert no_log.returncode == 1 and no_log.stderr.count("\n") == 1 and "foreground" in no_log.stderr
    rlx.run("rm", "fg")
    assert not (rlx.store / "containers" / row["Id"]).exists()


def test_logs_are_bare_lines_and_follow_sees_later_output(rlx: Rlx) -> None:
    detached(rlx, "chatty", f"echo one; echo err1 >&2; {WAIT_FOR_GO}; echo two; exit 0")
    wait_for_log(rlx, "chatty", "one")
    follow = subprocess.Popen(rlx.command("logs", "-f", "chatty"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=rlx.env, cwd=rlx.home, text=True)
    time.sleep(0.5)
    assert follow.poll() is None  # still following
    rlx.run("exec", "chatty", "touch", "/tmp/go")
    out, err = follow.communicate(timeout=30)  # ends by itself once the container has exited
    assert out == "one\ntwo\n" and err == "err1\n"
    plain = rlx.run("logs", "chatty")
    assert plain.stdout == "one\ntwo\n" and plain.stderr == "err1\n"
    assert rlx.run("logs", "--since", "2099-01-01T00:00:00Z", "chatty").stdout == ""
    assert rlx.run("logs", "--since", "1h", "chatty").stdout == "one\ntwo\n"


def test_exec_options_status_and_stdin(rlx: Rlx) -> None:
    detached(rlx, "box", "sleep 1000")
    result = rlx.run("exec", "-e", "A=1", "-u", "1000", "-w", "/tmp", "box", "sh", "-c", 'echo "$A $(id -u) $PWD"')
    assert result.stdout == "1 1000 /tmp\n"
    assert rlx.run("exec", "box", "sh", "-c", "exit 7", check=False).returncode == 7
    assert rlx.run("exec", "box", "cat", input="not for it\n").stdout == ""  # no -i: /dev/null
    assert rlx.run("exec", "-i", "box", "cat", input="for it\n").stdout == "for it\n"


def test_exec_it_in_a_real_terminal(rlx: Rlx) -> None:
    detached(rlx, "term", "sleep 1000")
    terminal = HeldTerminal(24, 80)
    proc = subprocess.Popen(rlx.command("exec", "-it", "term", "sh"), stdin=terminal.slave, stdout=terminal.slave,
                            stderr=terminal.slave, env={**rlx.env, "TERM": "xterm"}, cwd=rlx.home,
                            start_new_session=True)
    assert read_until(terminal, b"# "), terminal.seen  # the prompt: typed before it, input may be lost
    os.write(terminal.master, b"tty; stty size; echo $((6*7))\r")
    assert read_until(terminal, b"42\r\n"), terminal.seen
    assert b"/dev/pts/" in terminal.seen and b"24 80" in terminal.seen
    os.write(terminal.master, b"exit 3\r")
    assert proc.wait(timeout=20) == 3
    terminal.close()


def read_until(terminal: HeldTerminal, text: bytes, timeout: float = 20) -> bool:
    """HeldTerminal.read_until without blocking past the timeout when nothing comes."""
    deadline = time.monotonic() + timeout
    while text not in terminal.seen and time.monotonic() < deadline:
        ready, _, _ = select.select([terminal.master], [], [], 0.2)
        if ready:
            try:
                terminal.seen += os.read(terminal.master, 4096)
            except OSError:
                break
    return text in terminal.seen


def test_stop_sends_the_images_stop_signal(rlx: Rlx) -> None:
    detached(rlx, "polite", "trap 'echo got USR1; exit 3' USR1; echo ready; while :; do sleep 0.1; done")
    wait_for_log(rlx, "polite", "ready")
    started = time.monotonic()
    assert rlx.run("stop", "polite").stdout == "polite\n"
    assert time.monotonic() - started < 5  # it did not wait for the KILL
    assert rlx.run("wait", "polite").stdout == "3\n"
    assert "got USR1" in rlx.run("logs", "polite").stdout
    assert ps_json(rlx, "-a")["polite"]["Status"].startswith("Exited (3)")
    assert rlx.run("stop", "polite").returncode == 0  # podman: stopping a stopped container is no error


def test_stop_kills_after_the_timeout(rlx: Rlx) -> None:
    detached(rlx, "stubborn", "trap '' USR1 TERM; echo ready; while :; do sleep 0.1; done")
    wait_for_log(rlx, "stubborn", "ready")
    started = time.monotonic()
    rlx.run("stop", "-t", "1", "stubborn")
    elapsed = time.monotonic() - started
    assert 1 <= elapsed < 8, elapsed
    assert rlx.run("wait", "stubborn").stdout == "137\n"


def test_kill_sends_the_signal_asked_for(rlx: Rlx) -> None:
    detached(rlx, "target", "trap 'exit 5' HUP; echo ready; while :; do sleep 0.1; done")
    wait_for_log(rlx, "target", "ready")
    rlx.run("kill", "-s", "HUP", "target")
    assert rlx.run("wait", "target").stdout == "5\n"
    again = rlx.run("kill", "target", check=False)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "not running" in again.stderr


def test_attach_relays_output_and_returns_the_exit_code(rlx: Rlx) -> None:
    detached(rlx, "talker", f"echo early; {WAIT_FOR_GO}; echo late; exit 4")
    wait_for_log(rlx, "talker", "early")
    attach = subprocess.Popen(rlx.command("attach", "--no-stdin", "talker"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=rlx.env, cwd=rlx.home, text=True)
    time.sleep(0.5)
    rlx.run("exec", "talker", "touch", "/tmp/go")
    out, err = attach.communicate(timeout=30)
    assert "late\n" in out and attach.returncode == 4, (out, err)


def test_rm_leaves_nothing(rlx: Rlx) -> None:
    container_id = detached(rlx, "gone", "sleep 1000")
    pid = ps_json(rlx)["gone"]["Pid"]
    refused = rlx.run("rm", "gone", check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "rm -f" in refused.stderr
    assert rlx.run("rm", "-f", "gone").stdout == "gone\n"
    assert not _alive(pid)
    assert not (rlx.runtime_dir / "rlx" / container_id).exists()
    assert not (rlx.store / "containers" / container_id).exists()
    assert mounts_under(rlx.store) == [] and mounts_under(rlx.runtime_dir) == []
    assert processes_mentioning(container_id) == []
    assert rlx.run("ps", "-a", "--format", "json").stdout.strip() == "[]"
    # a stopped container goes without -f
    detached(rlx, "done", "exit 0")
    rlx.run("wait", "done")
    rlx.run("rm", "done")
    assert rlx.run("ps", "-a", "-q").stdout == ""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return stat[0] != "Z"


def test_port_and_inspect(rlx: Rlx) -> None:
    port = free_port()
    result = rlx.run("run", "-d", "--name", "srv", "-p", f"127.0.0.1:{port}:80", IMAGE, "sleep", "1000", check=False)
    if result.returncode != 0 and re.search(r"pasta|slirp4netns", result.stderr):
        pytest.skip(f"no network helper for -p: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert rlx.run("port", "srv").stdout == f"80/tcp -> 127.0.0.1:{port}\n"
    assert rlx.run("port", "srv", "80/tcp").stdout == f"127.0.0.1:{port}\n"
    assert f"127.0.0.1:{port}->80/tcp" in rlx.run("ps").stdout
    assert ps_json(rlx)["srv"]["Ports"] == [{"host_ip": "127.0.0.1", "host_port": port, "container_port": 80,
                                             "protocol": "tcp"}]
    unknown = rlx.run("port", "srv", "81", check=False)
    assert unknown.returncode == 1 and "81" in unknown.stderr
    [ctr] = json.loads(rlx.run("inspect", "srv").stdout)
    assert ctr["Name"] == "srv" and ctr["State"]["Running"] and ctr["State"]["Pid"] > 0
    assert ctr["Config"]["StopSignal"] == "SIGUSR1" and ctr["ImageName"] == IMAGE
    assert ctr["Path"] == "sleep" and ctr["Args"] == ["1000"]
    both = json.loads(rlx.run("inspect", "srv", IMAGE).stdout)
    assert both[0]["Id"] == ctr["Id"] and both[1]["record"]["name"] == IMAGE
    assert json.loads(rlx.run("inspect", "--type", "image", IMAGE).stdout)[0]["config"]["config"]["StopSignal"] == "SIGUSR1"
    missing = rlx.run("inspect", "--type", "container", IMAGE, check=False)
    assert missing.returncode == 1 and missing.stdout == "" and "no container" in missing.stderr
    helpers = network_helpers(rlx)
    assert helpers, "no network helper found for -p"
    rlx.run("rm", "-f", "srv")
    assert not [pid for pid in helpers if _alive(pid)]  # rm stops the network helper too


def network_helpers(rlx: Rlx) -> list[int]:
    """pasta or slirp4netns processes that name this rlx's runtime dir (their pid or socket files)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith((b"pasta", b"slirp4netns")) and \
                any(str(rlx.runtime_dir).encode() in arg for arg in argv):
            found.append(int(pid))
    return found


def _bash_completion(rlx: Rlx, line: str) -> list[str]:
    words = line.split(" ")
    # A shell runs plain `rlx` to complete: the store comes from RLX_STORE here
    env = {**rlx.env, "RLX_STORE": str(rlx.store), "_RLX_COMPLETE": "complete_bash", "COMP_WORDS": line,
           "COMP_CWORD": str(len(words) - 1)}
    result = subprocess.run(command_as(rlx.user, [rlx.binary]), capture_output=True, text=True, env=env, cwd=rlx.home, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout.split()


def test_completion_names_running_containers_and_images(rlx: Rlx, test_user: User) -> None:
    detached(rlx, "webby", "sleep 1000")
    detached(rlx, "wasdone", "exit 0")
    rlx.run("wait", "wasdone")
    assert _bash_completion(rlx, "rlx exec w") == ["webby"]  # exec wants a running container
    assert sorted(_bash_completion(rlx, "rlx rm w")) == ["wasdone", "webby"]
    assert _bash_completion(rlx, "rlx rmi local") == [IMAGE]
    assert _bash_completion(rlx, "rlx run local") == [IMAGE]  # `rlx run SOURCE`: local images,
    assert _bash_completion(rlx, "rlx run --rm -e A=1 local") == [IMAGE]
    assert _bash_completion(rlx, "rlx run ho") == ["host"]  # the host sandbox,
    (rlx.home / "rootfs-dir").mkdir()
    assert _bash_completion(rlx, "rlx run ./rootfs-d") == ["./rootfs-dir/"]  # and paths
    assert "ps" in _bash_completion(rlx, "rlx p")
    # zsh's and fish's protocols name it too
    zsh = subprocess.run(command_as(rlx.user, [rlx.binary]), capture_output=True, text=True, cwd=rlx.home, timeout=60,
                         env={**rlx.env, "RLX_STORE": str(rlx.store), "_RLX_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "rlx stop we"})
    assert "webby" in zsh.stdout, zsh.stderr
    fish = subprocess.run(command_as(rlx.user, [rlx.binary]), capture_output=True, text=True, cwd=rlx.home, timeout=60,
                          env={**rlx.env, "RLX_STORE": str(rlx.store), "_RLX_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                               "_TYPER_COMPLETE_ARGS": "rlx kill we"})
    assert "webby" in fish.stdout, fish.stderr
    # --install-completion in a real bash, then bash's own completion machinery asks rlx
    quoted = " ".join(f"'{arg}'" for arg in rlx.command())
    install = subprocess.run(["bash", "-c", f"{quoted} --install-completion; true"], capture_output=True,
                             text=True, env=rlx.env, cwd=rlx.home, timeout=60)
    script = rlx.home / ".bash_completions" / "rlx.sh"
    assert script.is_file() and f"source '{script}'" in (rlx.home / ".bashrc").read_text(), install.stdout + install.stderr
    probe = (f"export PATH={os.path.dirname(rlx.binary)}:$PATH; source {script}; "
             "COMP_WORDS=(rlx exec we); COMP_CWORD=2; _rlx_completion rlx; echo \"${COMPREPLY[@]}\"")
    shown = subprocess.run(command_as(test_user, ["bash", "-c", probe]), capture_output=True, text=True,
                           env={**rlx.env, "RLX_STORE": str(rlx.store)}, cwd=rlx.home, timeout=60)
    assert shown.stdout.split() == ["webby"], shown.stderr
    shown_script = subprocess.run(["bash", "-c", f"{quoted} --show-completion; true"], capture_output=True,
                                  text=True, env=rlx.env, cwd=rlx.home, timeout=60)
    assert "_RLX_COMPLETE=complete_bash" in shown_script.stdout, shown_script.stderr


def test_colour_only_on_a_terminal_and_never_with_no_color(rlx: Rlx) -> None:
    detached(rlx, "bright", "sleep 1000")
    assert ESC not in rlx.run("ps").stdout + rlx.run("--help").stdout + rlx.run("ps", "--help").stdout

    def on_terminal(*args: str, env: dict | None = None) -> bytes:
        terminal = HeldTerminal(40, 200)
        proc = subprocess.Popen(rlx.command(*args), stdin=terminal.slave, stdout=terminal.slave,
                                stderr=terminal.slave, env={**rlx.env, "TERM": "xterm", **(env or {})},
                                cwd=rlx.home, start_new_session=True)
        assert proc.wait(timeout=60) == 0
        read_until(terminal, b"\0", timeout=1)  # everything written so far
        terminal.close()
        return terminal.seen

    assert b"\033[32m" in on_terminal("ps")  # running: green
    assert ESC.encode() not in on_terminal("ps", env={"NO_COLOR": "1"})
    assert ESC.encode() not in on_terminal("--help", env={"NO_COLOR": "1"})
    assert ESC.encode() not in on_terminal("stop", "--help", env={"NO_COLOR": "1"})


def test_unknown_names_are_one_line(rlx: Rlx) -> None:
    for args in (["logs", "nope"], ["stop", "nope"], ["kill", "nope"], ["rm", "nope"], ["exec", "nope", "true"],
                 ["inspect", "nope"], ["port", "nope"], ["wait", "nope"], ["attach", "nope"]):
        result = rlx.run(*args, check=False)
        assert result.returncode == 1 and result.stdout == "", args
        assert result.stderr.count("\n") == 1 and "nope" in result.stderr and "rlx ps -a" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    for args in (["ps", "--bogus"], ["exec"], ["stop", "-t", "soon", "x"]):  # click's usage errors: one line too
        result = rlx.run(*args, check=False)
        assert result.returncode == 2 and result.stderr.startswith("rlx: ") and result.stderr.count("\n") == 1, args
        assert "--help shows how" in result.stderr, result.stderr


def test_help_has_examples_for_every_command(rlx: Rlx) -> None:
    commands = ["ps", "logs", "stop", "kill", "rm", "exec", "inspect", "port", "wait", "attach",
                "images", "pull", "load", "rmi", "prune", "bundle", "run"]
    for command in commands:
        shown = rlx.run(command, "--help").stdout
        assert "Examples:" in shown and f"rlx {command}" in shown.split("Examples:")[1], command
