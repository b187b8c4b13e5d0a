"""Stage 3 of create: the container init, inside every namespace of the container.

The order is runc's (standard_init_linux.go), for the reasons noted at each step. Everything
this stage uses is imported at the top: after pivot_root an import would read the container's
files (rootless.PITFALLS).
"""

import errno
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import os

from netns import loopback
from rootless.terminal import ctty
from rootless.create import initwait
from rootless.process import become, attrs, seccomp, seccomp_agent
from rootless.rootfs import apply as rootfs
from rootless.linux import procfs, syscalls as sc
from rootless.errors import RootlessError, SyscallError, fault


def run(channel, job) -> None:
    """Never returns: execs the container process, or reports an error and exits."""
    try:
        # /proc is still the caller's: /proc/self names us in the caller's PID namespace.
        channel.send("init", pid=int(os.readlink("/proc/self")))
        fault("init:start")
        _setup(channel, job)
    except RootlessError as err:
        _fail(channel, err.message)
    except OSError as err:
        where = f" `{err.filename}`" if err.filename else ""
        _fail(channel, f"container init: {err.strerror or err}{where}")
    except Exception as err:
        _fail(channel, f"container init: {type(err).__name__}: {err}")


def _fail(channel, message: str) -> None:
    try:
        channel.send("error", msg=message)
    finally:
        os._exit(1)


def _setup(channel, job) -> None:
    config = job.config
    proc = config["process"]
    linux = config["linux"]
    warnings: list[str] = []  # shown to the user by `create`
    notes: list[str] = []     # shown under --debug only

    # The caller's CPU pinning stays out: every CPU the cpuset allows (execCPUAffinity is exec's).
    attrs.set_cpus(None, "")
    if job.may_mknod:
        # Real root without a user namespace: until exec, this process runs the host's Python
        # inside the container's namespaces. Not dumpable, its /proc/PID/exe cannot be opened by
        # the container (the runc CVE-2019-5736 class: reopening it for writing later would
        # overwrite the host's interpreter). In a user namespace the host's files are not the
        # container root's to write, and the caller must keep reading /proc/PID/ns of the init.
        sc.set_dumpable(False)
    if not job.no_new_keyring:
        try:
            sc.join_new_session_keyring(job.container_id)
        except SyscallError as err:
            if err.errno not in (errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EDQUOT):
                raise

    if "network" in job.ns_plan.new_types:
        try:
            loopback.bring_up()
        except OSError as err:
            raise RootlessError(f"bring up lo in the container's network namespace: {err.strerror}") from None
    if "oomScoreAdj" in proc:
        become.set_oom_score_adj(proc["oomScoreAdj"])
    # Personality, scheduler and I/O priority: before seccomp can refuse the calls; execve keeps them.
    attrs.apply_process(config)
    # 1. The rootfs: propagation cut from the host, the mounts, /dev, then the root switch.
    rootfs.prepare(job.rootfs, linux.get("rootfsPropagation"), (config.get("annotations") or {}).get("rootless.overlay"))
    rootfs.apply_plan(job.rootfs, job.mount_plan, may_mknod=job.may_mknod)
    # 1b. Hooks before the root switch: the CLI process runs prestart and createRuntime in the
    #     runtime namespaces while we wait, then we run createContainer here (rootless.process.hooks).
    fault("init:mounted")
    start_hooks = _hooks_before_pivot(channel, config.get("hooks"), become.build_env(proc, job.listen_fds))
    cwd = proc.get("cwd", "/")
    listener_path = seccomp.agent_path(linux.get("seccomp"))
    # socket costs 4 ms to import, so only terminals and seccomp agents pay for it, and before
    # the root switch.
    socket_module = __import__("socket") if proc.get("terminal") or listener_path else None
    # The seccomp agent's socket is a host path: connect while the host's root is visible.
    agent = _connect_agent(listener_path) if listener_path else None
    # The wait for `start` is initwait's unless Python has more to do after it (startContainer
    # hooks), an LSM label would go to initwait's execve instead of the process's, or `run`
    # starts the container at once (a wait too short for initwait's memory saving to pay for
    # its execve, about 0.7 ms).
    labelled = proc.get("apparmorProfile") or proc.get("selinuxLabel")
    waiter = initwait.load() if start_hooks is None and not labelled and not job.starts_at_once else None
    fifo = _fifo_handle(job)
    rootfs.pivot(job.rootfs, job.no_pivot)
    # 2. The terminal needs the container's devpts, so it comes after the root switch.
    if proc.get("terminal"):
        ctty.setup(socket_module, job.console_fd, proc.get("consoleSize"))
    # 3. sysctls need the container's /proc/sys writable: before read-only paths close it. Masked
    #    and read-only paths come last among the mounts: nothing may mount over them later.
    become.apply_sysctls(linux.get("sysctl", {}))
    # A missing cwd is made while the root is still writable (runc's order): root.readonly
    # comes with finish().
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755, exist_ok=True)
    rootfs.finish(config, job.mount_plan)
    # (config.check_semantics refused a hostname without a uts namespace.)
    if config.get("hostname"):
        sc.sethostname(config["hostname"])
    if config.get("domainname"):
        sc.setdomainname(config["domainname"])
    # 4-6. rlimits, seccomp, user, capabilities, cwd, no_new_privs, labels (process.become).
    load_filter = (lambda: _load_seccomp(job, agent, socket_module)) if job.seccomp_filter is not None else None
    if fifo[1] != "exec.fifo":
        _check_fd_dir(fifo[1])  # before seccomp, which may refuse fstatfs
    executable, env = become.become(proc, load_filter, warnings, notes, job.listen_fds)
    # 7. Ready: the parent records the container, then we wait for `start` on exec.fifo.
    channel.send("ready", warnings=warnings, notes=notes)
    fault("init:ready")
    channel.expect("ack")
    fault("init:acked")
    channel.close()
    # 8. Only stdio, preserved fds and socket-activation fds reach the process.
    keep = 3 + job.preserve_fds + job.listen_fds
    if waiter is not None:
        fifo = initwait.exec_waiting(waiter, fifo, keep, executable=executable, args=proc["args"], env=env)
    fifo_fd = _wait_for_start(fifo, start_hooks, env)
    # The fifo stays open until the execve succeeds: `start` reads to its end, and learns of
    # a failed execve from "e" and the errno (initwait.c does the same).
    become.pass_fds(keep, on_exec=True)
    become.reset_signals()
    try:
        os.execve(executable, proc["args"], env)
    except OSError as err:
        try:
            os.write(fifo_fd, b"e%d %s" % (err.errno, os.fsencode(executable)[:4000]))
        except OSError:
            raise err from None
        os._exit(127)


def _hooks_before_pivot(channel, hooks: dict | None, process_env: dict):
    """The "hooks" step of rootless.create.protocol when the config has hooks that need it, then the
    createContainer hooks. Returns what runs the startContainer hooks later (given the
    process's final environment), or None. Hooks without env get the process's environment
    (process_env here), as runc's init gives them."""
    if not hooks:
        return None
    from rootless.process import hooks as runner  # loaded by the launcher already; before pivot_root anyway
    if not runner.wanted(hooks, runner.INIT_KINDS):
        return None
    channel.send("hooks")
    state = channel.expect("continue")["state"]
    runner.run_all("createContainer", hooks, state, env=process_env)
    if not hooks.get("startContainer"):
        return None
    return lambda env: runner.run_all("startContainer", hooks, dict(state, status="created"), env=env)


def _connect_agent(path: str):
    """The seccomp agent's socket, and our host PID for it: /proc is still the host's, so
    /proc/self names it."""
    return seccomp_agent.connect(path), int(os.readlink("/proc/self"))


def _load_seccomp(job, agent, socket) -> None:
    if agent is None:
        seccomp.load(job.seccomp_filter)
        return
    sock, host_pid = agent
    seccomp_agent.load_and_hand_over(job.seccomp_filter, sock, socket, job.config, container_id=job.container_id,
                                     bundle=job.bundle, status="creating", pid=host_pid, init_pid=host_pid)


def _fifo_handle(job) -> tuple[int, str]:
    """What the waiting init opens exec.fifo through (an fd, and a name relative to it), taken
    while the host is in view: an O_PATH fd of the fifo itself, reopened later through the
    container's /proc/self/fd (runc's way). No fd of a host directory stays in the container,
    from which `..` would lead out of it (the CVE-2024-21626 class). A container without a
    procfs at /proc keeps the state directory's fd: without procfs there is no /proc/1/fd
    to reach it through."""
    if not any(op.kind == "mount" and op.fstype == "proc" and os.path.normpath(op.destination) == "/proc"
               for op in job.mount_plan):
        return job.state_dir_fd, "exec.fifo"
    fd = os.open("exec.fifo", os.O_PATH | os.O_CLOEXEC, dir_fd=job.state_dir_fd)
    os.close(job.state_dir_fd)
    return fd, f"/proc/self/fd/{fd}"


def _check_fd_dir(name: str) -> None:
    """The /proc/self/fd that exec.fifo will be reopened through must be the kernel's."""
    fd = os.open(os.path.dirname(name), os.O_PATH | os.O_CLOEXEC)
    try:
        procfs.require_procfs(fd, os.path.dirname(name))
    finally:
        os.close(fd)


def _wait_for_start(fifo: tuple[int, str], start_hooks=None, env: dict | None = None) -> int:
    """Block until `start` opens exec.fifo for reading, run the startContainer hooks, then tell
    `start` with one write: "0", or "1" and the hook's error (we exit: the container stops).
    fifo is what _fifo_handle took on the host before pivot_root.

    As PID 1 of its namespace the waiting init would ignore every signal it has no handler for:
    `kill ID TERM` of a created container must end it, as it ends runc's init."""
    for signum in _ENDING_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    fd = os.open(fifo[1], os.O_WRONLY | os.O_CLOEXEC, dir_fd=fifo[0])
    if start_hooks is not None:
        # As runc runs them: as the container's user, with its capabilities and rlimits.
        try:
            start_hooks(env)
        except RootlessError as err:
            os.write(fd, b"1" + err.message.encode(errors="replace")[:1024])
            os._exit(1)
    os.write(fd, b"0")
    os.close(fifo[0])
    return fd


_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _exit_on_signal(signum, _frame) -> None:
    os._exit(128 + signum)
