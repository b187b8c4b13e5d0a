"""Attach a network helper to a container in the create window, and detach it on delete.

The launcher calls attach() after the init reported "ready" (its network namespace exists)
and before it sends "ack", so `start` releases a container whose network works. attach()
returns the record kept in state.json under "network"; detach(record) stops what it names.

Every helper has one owner at a time: attach() until it returns (it undoes its own work on
failure), then the record, and meanwhile the watcher (netns.spawn.start_watcher), which kills
the helper when the container's init dies without a `delete`.
"""

import os

from netns import spawn
from rootless.linux import procfs


def attach(plan, init_pid: int, state_dir: str, *, userns: bool) -> dict:
    """Start the helper of `plan` (a netns.config.NetworkPlan) for the init's namespaces."""
    record: dict = {"mode": plan.mode, "ports": [port.describe() for port in plan.ports]}
    if plan.helper is None:
        return record
    if plan.helper == "pasta":
        return _attach_pasta(plan, init_pid, state_dir, userns, record)
    return _attach_slirp4netns(plan, init_pid, state_dir, userns, record)


def _attach_pasta(plan, init_pid: int, state_dir: str, userns: bool, record: dict) -> dict:
    """pasta daemonizes and outlives whoever started it: its watcher comes first, so a CLI
    killed at any moment leaves pasta with an owner. The watcher finds pasta through its pid
    file once the init dies."""
    from netns import pasta
    pid_file = os.path.join(state_dir, pasta.PID_FILE)
    record.update(helper="pasta", files=[pid_file])
    record["watcher_pid"] = spawn.start_watcher(init_pid, None, (), [pid_file], helper_pid_file=pid_file)
    record["watcher_start"] = procfs.start_time(record["watcher_pid"])
    try:
        record.update(pasta.start(plan, init_pid, state_dir, userns=userns))
        record["helper_start"] = procfs.start_time(record["helper_pid"])
    except BaseException:
        detach(record)
        raise
    return record


def _attach_slirp4netns(plan, init_pid: int, state_dir: str, userns: bool, record: dict) -> dict:
    """slirp4netns exits when its exit fd closes: until the watcher holds that fd, the CLI does,
    so a CLI killed before the watcher exists takes slirp4netns with it."""
    from netns import slirp4netns
    helper, exit_w = slirp4netns.start(plan, init_pid, state_dir, userns=userns)
    record.update(helper)
    record["helper_start"] = procfs.start_time(helper["helper_pid"])
    try:
        try:
            record["watcher_pid"] = spawn.start_watcher(init_pid, helper["helper_pid"], (exit_w,), helper["files"])
        finally:
            os.close(exit_w)
        record["watcher_start"] = procfs.start_time(record["watcher_pid"])
        if plan.ports:
            slirp4netns.publish(helper["api_socket"], plan.ports)
    except BaseException:
        detach(record)
        raise
    return record


def detach(record: dict | None) -> None:
    """Stop the helper and its watcher and remove their files; they may be gone already."""
    if not record or "helper" not in record:
        return
    spawn.stop(record.get("helper_pid"), record.get("helper_start"))
    spawn.stop(record.get("watcher_pid"), record.get("watcher_start"))
    spawn.remove(record.get("files", []))
