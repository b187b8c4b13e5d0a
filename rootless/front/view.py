"""ROOT/ID/front: what the compiled front (rootless/front/front.c) knows of a container, written
beside state.json each time it is saved. The front answers `state`, `start`, `kill` and `delete`
from it when it can answer completely, and hands the call to Python otherwise; a container
without this file (or with another version) is always Python's.

    rootless-front 1
    state.json INODE SIZE MTIME_NS    the state.json this view was written for
    init PID START_TIME               the init (never written without its start time)
    cgroup PATH                       its cgroup directory, or nothing: `pause` freezes it
    teardown 0|1                      1: delete has more to do than removing the directory
    notify 0|1                        created with a NOTIFY_SOCKET to relay
    state
    ...                               exactly what `state` prints, for the status "stopped"

The front puts the PID and the status in the 4th and 5th lines of the last part. Paths and ids
hold no newline (ids are checked; cgroup paths are made from them), so lines are fields.
"""

import os

FILE = "front"
VERSION = "rootless-front 1"


def needs_teardown(record: dict) -> bool:
    """What rootless.container.delete does for a stopped container besides removing the
    directory (poststop hooks aside: the front looks for hooks.json itself)."""
    return bool(record.get("network") or record.get("shim")
                or (record.get("cgroup") or {}).get("driver") in ("cgroupfs", "systemd"))


def prepare(directory: str, record: dict, state_text: str, saved: os.stat_result):
    """The view of record (whose state.json is `saved`), written beside its place; the returned
    function renames it into place (or, for a record the front must leave to Python, removes the
    view). A reader sees the old view or the new one, and an old view names the old state.json,
    which no longer matches."""
    final = os.path.join(directory, FILE)
    cgroup = (record.get("cgroup") or {}).get("path") or ""
    if not record.get("pid_start") or "\n" in cgroup:
        return lambda: _remove(final)
    lines = [VERSION,
             f"state.json {saved.st_ino} {saved.st_size} {saved.st_mtime_ns}",
             f"init {record['pid']} {record['pid_start']}",
             f"cgroup {cgroup}",
             f"teardown {int(needs_teardown(record))}",
             f"notify {int(bool(record.get('notify')))}",
             "state",
             state_text]
    temporary = final + ".tmp"
    with open(temporary, "w") as f:
        f.write("\n".join(lines))
    return lambda: os.rename(temporary, final)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
