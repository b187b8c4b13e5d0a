"""`exec`, the child's side: joins the namespaces of a container's init (the user namespace
first), enters its root, forks the process (a PID namespace takes effect for children only),
reports the process's host PID and exits. The process becomes what the container's config says
(rootless.process.become.become) and executes the command.

Messages to the CLI process, on the pipe of rootless.create.protocol (one JSON object per line):
  the stage:   {"type": "cgroup", "pid": P} only when it may not write the container's
                                             cgroup.procs itself and systemd manages the
                                             cgroup; waits for {"type": "joined"}
  the stage:   {"type": "pid", "pid": P}     P as the caller sees it: fork's return value here,
                                             where our own PID namespace is still the caller's
  the process: {"type": "warnings", "warnings": [...]} when there are any, then nothing: the
               execve closes the pipe (close-on-exec), which tells the CLI it succeeded
  either:      {"type": "error", "msg": "..."} and exit
"""

import errno
import os

from rootless.terminal import ctty
from rootless.oci import namespaces
from rootless.process import attrs, become, seccomp, seccomp_agent
from rootless.linux import syscalls as sc
from rootless.errors import RootlessError


def run(channel, job) -> None:
    """Never returns."""
    try:
        # Undumpable while it holds fds of the host (the namespaces, the root, the host's /proc):
        # a process of the container could otherwise take them through /proc/PID/fd once we
        # are in its namespaces (the runc CVE-2024-21626 class). The process turns dumpable
        # again once it has closed them (_process), unless it is the host's root outside any
        # user namespace: then, like a root container's init, it stays undumpable until its
        # execve, so that no process of the container reaches /proc/PID/exe, the host's
        # interpreter (the runc CVE-2019-5736 class).
        sc.set_dumpable(False)
        stay_undumpable = _host_root() and not any(t == "user" for t, _ in job.namespace_fds)
        # process.execCPUAffinity.initial while joining (before the container's cgroup, in the
        # spec's words), else every CPU: the caller's pinning stays out, as with current runc.
        initial, final = attrs.cpu_affinity(job.process)
        attrs.set_cpus(initial, "initial")
        if job.cgroup_fd is not None:
            # Into the container's cgroup before anything else: the process is forked below.
            try:
                os.write(job.cgroup_fd, b"0")
            except OSError as err:
                if not job.cgroup_unit or err.errno not in (errno.EACCES, errno.EPERM):
                    raise RootlessError(f"join the container's cgroup: {err.strerror}") from None
                # A caller outside the user's delegated tree (a login session's scope) may not
                # move itself there; systemd may, through its system instance.
                channel.send("cgroup", pid=os.getpid())
                channel.expect("joined")
        for nstype, fd in job.namespace_fds:
            sc.setns(fd, namespaces.FLAGS[nstype], f"/proc/{job.init_pid}/ns/{namespaces.PROC_NAMES[nstype]}")
            if nstype == "user":
                become.become_namespace_root()
        # The init's root. setns into the mount namespace already lands on the topmost mount at
        # its root (so --no-pivot's moved rootfs too); entering /proc/PID/root states it
        # rather than relying on it.
        os.fchdir(job.root_fd)
        os.chroot(".")
        pid = os.fork()
        if pid == 0:
            _process(channel, job, stay_undumpable, final)
        try:
            channel.send("pid", pid=pid)
        except BrokenPipeError:
            pass  # the process failed first, and the CLI, which reported that, stopped listening
        os._exit(0)
    except RootlessError as err:
        channel.send("error", msg=err.message)
    except OSError as err:
        channel.send("error", msg=f"exec: join the container: {err.strerror or err}")
    except Exception as err:  # still one line for the user
        channel.send("error", msg=f"exec: {type(err).__name__}: {err}")
    os._exit(1)


def _process(channel, job, stay_undumpable: bool, final_cpus: list[int] | None) -> None:
    proc = job.process
    try:
        # The host's /proc is needed for one fact, our host PID (for a seccomp agent): read it
        # now, then drop every fd of the host before turning dumpable again (writing our own
        # /proc/self files needs it in a user namespace).
        host_pid = int(os.readlink("self", dir_fd=job.host_proc)) if job.host_proc is not None else None
        for fd in [fd for _, fd in job.namespace_fds] + [job.root_fd] + [job.host_proc] * (job.host_proc is not None):
            os.close(fd)
        if not stay_undumpable:
            sc.set_dumpable(True)
        if proc.get("terminal"):
            ctty.setup(job.socket_module, job.console_fd, proc.get("consoleSize"), clear_onlcr=job.local_console)
        if "oomScoreAdj" in proc:
            become.set_oom_score_adj(proc["oomScoreAdj"])
        attrs.apply_process({"process": proc, "linux": job.linux})
        warnings: list[str] = []
        if final_cpus is not None:
            # Before the filter loads: a profile need not allow sched_setaffinity.
            attrs.set_cpus(final_cpus, "final")
        load_filter = _filter_loader(job, host_pid)
        executable, env = become.become(proc, load_filter, warnings, [])
        if warnings:
            channel.send("warnings", warnings=warnings)
        # The protocol pipe closes at the execve, as every fd from here on does.
        become.pass_fds(3 + job.preserve_fds, on_exec=True)
        become.reset_signals()
        os.execve(executable, proc["args"], env)
    except RootlessError as err:
        channel.send("error", msg=err.message)
    except OSError as err:
        where = f" `{err.filename}`" if err.filename else ""
        channel.send("error", msg=f"exec: {err.strerror or err}{where}")
    except Exception as err:
        channel.send("error", msg=f"exec: {type(err).__name__}: {err}")
    os._exit(127)


def _host_root() -> bool:
    """Root of the initial user namespace (read while /proc is still the host's)."""
    if os.geteuid() != 0:
        return False
    with open("/proc/self/uid_map", "rb") as f:
        return f.read().split() == [b"0", b"0", b"4294967295"]


def _filter_loader(job, host_pid: int | None):
    """What loads the container's seccomp filter in the process (None without one), handing the
    notification fd to the container's seccomp agent when it has one."""
    if job.seccomp_filter is None:
        return None
    if job.agent is None:
        return lambda: seccomp.load(job.seccomp_filter)
    return lambda: seccomp_agent.load_and_hand_over(
        job.seccomp_filter, job.agent, job.socket_module, job.config, container_id=job.container_id,
        bundle=job.bundle, status="running", pid=host_pid, init_pid=job.init_pid)
