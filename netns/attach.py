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
from rootless import procfs


def attach(plan, init_pid: int, state_dir: str, *, userns: bool) -> dict:
    """Start the helper of `plan` (a netns.config.NetworkPlan) for the init's namespaces."""
    record: dict = {"mode": plan.mode, "ports": [port.describe() for port in plan.ports]}
    if plan.helper is None:
        return record
    keep_fds: tuple[int, ...] = ()
    if plan.helper == "pasta":
        from netns import pasta
        helper = pasta.start(plan, init_pid, state_dir, userns=userns)
    else:
        from netns import slirp4netns
        helper, exit_w = slirp4netns.start(plan, init_pid, state_dir, userns=userns)
        keep_fds = (exit_w,)
    record.update(helper)
    record["helper_start"] = procfs.start_time(helper["helper_pid"])
    try:
        try:
            record["watcher_pid"] = spawn.start_watcher(init_pid, helper["helper_pid"], keep_fds, helper["files"])
        finally:
            for fd in keep_fds:
                os.close(fd)
        record["watcher_start"] = procfs.start_time(record["watcher_pid"])
        if plan.helper == "slirp4netns" and plan.ports:
            from netns import slirp4netns
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
