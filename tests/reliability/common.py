"""What the reliability tests share: size knobs, leak counters, one-line error checks.

Each part has a size knob (an environment variable) with a default that keeps the whole
folder within a few minutes on a 2-core machine; raise them for a long soak:
  RELIABILITY_LIFECYCLES   lifecycles of the soak (test_soak.py)
  RELIABILITY_FUZZ         fuzzed configs in total (test_fuzz.py)
"""

import os
import shutil
import time
from pathlib import Path

from helpers import leaks


def knob(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def helpers_present() -> dict[str, bool]:
    return {name: shutil.which(name) is not None for name in ("pasta", "slirp4netns")}


def tun_usable() -> bool:
    return os.path.exists("/dev/net/tun") and os.stat("/dev/net/tun").st_mode & 0o006 == 0o006


def _state_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return "gone"
    return raw.rsplit(b")", 1)[1].split()[0].decode()


def live_processes_of(uid: int) -> list[tuple[int, str]]:
    """The test user's processes that are not zombies (PID 1 here reaps late)."""
    return [(pid, cmd) for pid, cmd in leaks.processes_of(uid) if _state_of(pid) not in ("Z", "X", "gone")]


def fd_count(pids) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def mount_count() -> int:
    return len(Path("/proc/self/mountinfo").read_text().splitlines())


def helper_processes(needle: str) -> list[tuple[int, str]]:
    """Live pasta and slirp4netns processes whose command line names `needle` (a state root)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                comm = Path(f"/proc/{name}/comm").read_text().strip()
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes().decode(errors="replace")
            except OSError:  # gone meanwhile
                continue
            if comm.startswith(("pasta", "passt", "slirp4netns")) and needle in cmdline \
                    and _state_of(int(name)) not in ("Z", "X"):
                found.append((int(name), comm))
    return found


def wait_dead(pids, timeout: float = 5.0) -> list[int]:
    """PIDs of `pids` still alive (not zombies) after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if pid and _state_of(pid) not in ("Z", "X", "gone")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not warnings."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("rootless: warning:")]


def assert_one_line_error(result, what: str) -> None:
    assert "internal error" not in result.stderr, f"{what}: {result.stderr}"
    assert "Traceback" not in result.stderr, f"{what}: {result.stderr}"
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("rootless: "), f"{what}: want one line, got {result.stderr!r}"
