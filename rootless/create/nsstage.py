"""Stage 2 of create: the namespace-creating child, forked by the CLI process (as early as it
can: rootless.create.stagefork) and given its job (rootless.create.protocol).

It joins the namespaces given by path (the user namespace first), creates the user namespace
and waits until the parent has written its ID maps, creates the other namespaces inside it,
then forks the container init (PID 1 when there is a new PID namespace: CLONE_NEWPID takes
effect for children only) and exits. See rootless.create.protocol for the messages.
"""

import os

from rootless.oci import namespaces
from rootless.linux import syscalls as sc
from rootless.errors import RootlessError, fault


def serve(channel) -> None:
    """Load the init's modules, wait for the job, carry it out. Never returns."""
    try:
        from rootless.create import init  # noqa: F401  (all it imports, while the parent plans)
        fault("nsstage:waiting")
        job = channel.receive_job()
    except RootlessError as err:
        _report(channel, err.message)
    except Exception as err:
        _report(channel, f"namespace stage: {type(err).__name__}: {err}")
    if job is None:
        os._exit(0)  # the CLI process refused the config, or is gone: nothing was made
    run(channel, job)


def run(channel, job) -> None:
    """Never returns."""
    try:
        if job.own_cgroup:
            # Into the container's cgroup before any namespace exists: the init and all it
            # forks are born there, and a new cgroup namespace is rooted at it.
            channel.send("cgroup", pid=os.getpid())
            channel.expect("joined")
        plan = job.ns_plan
        for nstype, path in plan.join:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise RootlessError(f"open namespace {nstype} `{path}`: {err.strerror}") from None
            try:
                sc.setns(fd, namespaces.FLAGS[nstype], path)
            finally:
                os.close(fd)
            if nstype == "user":
                from rootless.process import become
                become.become_namespace_root()
        if plan.new_user:
            sc.unshare(sc.CLONE_NEWUSER)
            fault("nsstage:userns")
            channel.send("userns", pid=os.getpid())
            channel.expect("mapped")
            from rootless.process import become
            become.become_namespace_root()
        from rootless.create import init
        from rootless.process import attrs
        if plan.unshare_flags:
            sc.unshare(plan.unshare_flags)
        if job.config["linux"].get("timeOffsets"):
            # Only while no process is in the new time namespace: before the fork.
            attrs.write_time_offsets(job.config["linux"]["timeOffsets"])
        if os.fork() == 0:
            init.run(channel, job)
        fault("nsstage:forked")
        # The init announces its own PID: one writer for "init" and what follows, so the
        # parent never sees "ready" before it (a message from here could arrive later).
        os._exit(0)
    except RootlessError as err:
        _report(channel, err.message)
    except Exception as err:  # still one line for the user, never a traceback on conmon's pipe
        _report(channel, f"namespace stage: {type(err).__name__}: {err}")
    os._exit(1)


def _report(channel, message: str) -> None:
    """The error for the parent; if the parent is gone there is nobody to tell. Never let an
    exception out: this is a forked copy of the CLI, whose error handling would run again here."""
    try:
        channel.send("error", msg=message)
    finally:
        os._exit(1)
