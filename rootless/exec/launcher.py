"""`exec`, the CLI process's side: the process to run (from --process, or the command line over
the container's own process), what must be opened on the host before the fork (the init's
namespaces and root, the console socket), the fork of rootless.exec.stage, and the wait."""

import os
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless import jsonlite as json
from rootless.oci import namespaces
from rootless.linux import procfs
from rootless.create import protocol
from rootless import state
from rootless.process import supervise
from rootless.errors import RootlessError, UsageError


class ExecRequest:
    """exec's flags, as runc spells them."""

    def __init__(self, args: list[str], process_file: str | None = None, cwd: str | None = None,
                 env: list[str] | None = None, user: str | None = None, additional_gids: list[str] | None = None,
                 caps: list[str] | None = None, no_new_privs: bool = False, tty: bool | None = None,
                 console_socket: str | None = None, detach: bool = False, pid_file: str | None = None,
                 preserve_fds: int = 0, apparmor: str | None = None, process_label: str | None = None,
                 ignore_paused: bool = False, cgroup: list[str] | None = None):
        self.args, self.process_file, self.cwd, self.env = args, process_file, cwd, env or []
        self.user, self.additional_gids, self.caps = user, additional_gids or [], caps or []
        self.no_new_privs, self.tty, self.console_socket, self.detach = no_new_privs, tty, console_socket, detach
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.preserve_fds, self.apparmor, self.process_label = preserve_fds, apparmor, process_label
        self.ignore_paused, self.cgroup = ignore_paused, cgroup or []


class ExecJob:
    """What rootless.exec.stage needs, opened and computed before the fork."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _number(text: str, what: str, error: type[RootlessError] = UsageError) -> int:
    if not text.isdigit():
        raise error(f"invalid {what} {text!r}: expected a number")
    return int(text)


def _read_process_file(path: str) -> dict:
    try:
        with open(path) as f:
            proc = json.loads(f.read())
    except OSError as err:
        raise RootlessError(f"--process {path}: {err.strerror}") from None
    except ValueError as err:
        raise RootlessError(f"--process {path}: not valid JSON: {err}") from None
    from rootless.oci.config import drop_nulls
    drop_nulls(proc)  # null is absent, as runc reads it
    if not isinstance(proc, dict) or not isinstance(proc.get("args"), list) or not proc["args"] \
            or not all(isinstance(arg, str) for arg in proc["args"]):
        raise RootlessError(f"--process {path}: an OCI process object with a non-empty args list is expected")
    return proc


def build_process(container_process: dict, request: ExecRequest) -> dict:
    """The process `exec` runs: --process FILE as it is, or the container's own process with the
    command and the flags over it (runc's rules). Pure."""
    if request.process_file:
        proc = _read_process_file(request.process_file)
    else:
        # Not a usage error (exit 1) but a failed exec (255), as runc's "process args cannot be
        # empty" and its uid parsing are: runc finds the container first.
        if not request.args:
            raise RootlessError("exec needs a command after the container ID, or --process FILE")
        proc = json.loads(json.dumps(container_process))  # a deep copy
        proc["args"] = list(request.args)
        # process.consoleSize stays: runc's exec copies the container's process, and the init
        # of the exec sizes the pty with it (a console socket's receiver sees that size).
        proc["terminal"] = False
        if request.cwd:
            proc["cwd"] = request.cwd
        proc["env"] = proc.get("env", []) + request.env
        user = proc.setdefault("user", {"uid": 0, "gid": 0})
        if request.user:
            uid, _, gid = request.user.partition(":")
            user["uid"] = _number(uid, "user", RootlessError)
            if gid:
                user["gid"] = _number(gid, "group", RootlessError)
        if request.additional_gids:
            user["additionalGids"] = [_number(g, "additional gid") for g in request.additional_gids]
        if request.caps:
            caps = proc.setdefault("capabilities", {})
            for name in request.caps:
                name = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
                for field in ("bounding", "effective", "permitted"):
                    caps.setdefault(field, []).append(name)
                # Ambient needs inheritable: runc adds it only where the process has some.
                if caps.get("inheritable"):
                    caps.setdefault("ambient", []).append(name)
        if request.no_new_privs:
            proc["noNewPrivileges"] = True
        if request.apparmor:
            proc["apparmorProfile"] = request.apparmor
        if request.process_label:
            proc["selinuxLabel"] = request.process_label
    if request.tty is not None:
        proc["terminal"] = request.tty
    return proc


def _open_namespaces(init_pid: int) -> list[tuple[str, int]]:
    """Fds of the init's namespaces to join, opened now: once in its mount namespace, /proc is
    the container's."""
    own = {t: procfs.ns_inode(os.getpid(), name) for t, name in namespaces.PROC_NAMES.items()}
    target = {t: procfs.ns_inode(init_pid, name) for t, name in namespaces.PROC_NAMES.items()}
    opened = []
    try:
        for nstype in namespaces.namespaces_to_join(target, own):
            path = f"/proc/{init_pid}/ns/{namespaces.PROC_NAMES[nstype]}"
            try:
                opened.append((nstype, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as err:
                raise RootlessError(f"open {path}: {err.strerror}") from None
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened


def execute(ctx, cdir: state.ContainerDir, record: dict, request: ExecRequest) -> int:
    """Run the process in the container; with detach return 0 once it runs, else wait and
    return its exit status (128+N when signal N killed it)."""
    current = state.status(cdir, record)
    if current == "stopped":
        raise RootlessError(f"cannot exec in a stopped container: {cdir.id}")
    if current == "paused" and not request.ignore_paused:
        raise RootlessError("cannot exec in a paused container (use --ignore-paused to override)")  # runc's words
    config = cdir.load_config()
    proc = build_process(config["process"], request)
    terminal = bool(proc.get("terminal"))
    if request.console_socket and not terminal:
        raise UsageError("--console-socket needs a terminal: add -t/--tty (or terminal: true in --process)")
    if terminal and request.detach and not request.console_socket:
        raise UsageError("exec -t -d needs --console-socket: a detached process's terminal goes to a console socket")
    supervise.check_preserved_fds(request.preserve_fds)
    from rootless.process import attrs
    attrs.check_lsm({"process": proc, "linux": {}})
    attrs.cpu_affinity(proc)  # a bad list fails here, not in the container
    linux = config.get("linux", {})
    seccomp_filter = listener_path = None
    if "seccomp" in linux:
        from rootless.process import seccomp, seccomp_cache
        seccomp_filter, _ = seccomp_cache.compile(linux["seccomp"])
        listener_path = seccomp.agent_path(linux["seccomp"])
    socket_module = local_console = None
    console_fd = agent = host_proc = None
    init_pid = record["pid"]
    namespace_fds = _open_namespaces(init_pid)
    root_fd = cgroup_fd = None
    try:
        root_fd = os.open(f"/proc/{init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        cgroup_fd = _open_cgroup(record, request.cgroup)
        if terminal or listener_path:
            import socket as socket_module
        if listener_path:
            from rootless.process import seccomp_agent
            agent = seccomp_agent.connect(listener_path)
            # The process reads its host PID for the agent through the host's /proc: its own
            # /proc is the container's.
            host_proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if terminal:
            if request.console_socket:
                from rootless.linux import unixsock
                console_fd = unixsock.connect(request.console_socket, "console socket").detach()
            else:
                local_console, remote = socket_module.socketpair()
                console_fd = remote.detach()
                # The process runs as soon as its pty is made: the caller's size goes there
                # first, over process.consoleSize (runc sizes the pty by consoleSize and by the
                # caller's terminal once the process runs: docs/differences-from-runc.md).
                from rootless.terminal import console
                size = console.window_size(0)
                if size:
                    proc["consoleSize"] = size
        # The process becomes our child when the stage exits, so a failure can still reap it.
        supervise.adopt_orphans()
        job = ExecJob(init_pid=init_pid, namespace_fds=namespace_fds, root_fd=root_fd, process=proc, linux=linux,
                      seccomp_filter=seccomp_filter, console_fd=console_fd, socket_module=socket_module,
                      preserve_fds=request.preserve_fds, local_console=local_console is not None, agent=agent, host_proc=host_proc, config=config,
                      container_id=cdir.id, bundle=record.get("bundle", ""), cgroup_fd=cgroup_fd,
                      cgroup_unit=_systemd_unit(record))
        pid = _fork_stage(job, ctx.warn)
    finally:
        for _, fd in namespace_fds:
            os.close(fd)
        for fd in (root_fd, console_fd, host_proc, cgroup_fd):
            if fd is not None:
                os.close(fd)
        if agent is not None:
            agent.close()
    if request.pid_file:
        try:
            state.write_pid_file(request.pid_file, pid)
        except RootlessError:
            os.kill(pid, signal.SIGKILL)  # a failed exec leaves no process behind
            supervise.wait_exit_code(pid)
            raise
    if request.detach:
        return 0
    supervise.forward_signals(pid)
    if local_console is not None:
        from rootless.terminal import console
        master = console.receive_pty(local_console)
        local_console.close()
        console.proxy(master)
    return supervise.wait_exit_code(pid)


def _open_cgroup(record: dict, wanted: list[str]) -> int | None:
    """cgroup.procs of the container's cgroup (or of a cgroup below it, runc's `--cgroup
    PATH`), opened here: the kernel checks who may move a process into it when the file is
    opened, so the stage can write to it after it joined the user namespace."""
    path = (record.get("cgroup") or {}).get("path")
    if not path or not os.path.isdir(path):
        if wanted:
            raise UsageError("--cgroup: the container has no cgroup of its own")
        return None
    for value in wanted:
        controller, colon, sub = value.rpartition(":")
        sub = sub.strip("/")
        if not sub or ".." in sub.split("/"):
            raise UsageError(f"--cgroup {value!r}: give a path below the container's cgroup")
        path = os.path.join(path, sub)  # cgroup v2 has one hierarchy: the controller part is moot
    target = os.path.join(path, "cgroup.procs")
    try:
        return os.open(target, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise RootlessError(f"open `{target}`: {err.strerror}") from None


def _systemd_unit(record: dict) -> dict | None:
    entry = record.get("cgroup") or {}
    return entry if entry.get("driver") == "systemd" else None


def _fork_stage(job: ExecJob, warn) -> int:
    """Fork rootless.exec.stage and follow its messages until the process has executed its
    program. Returns the process's host PID."""
    parent, child = protocol.make_pipes()
    stage = os.fork()
    if stage == 0:
        parent.close()
        from rootless.exec import stage as exec_stage
        exec_stage.run(child, job)
    child.close()
    pid = None
    try:
        while True:
            message = parent.receive()
            if message is None:
                break
            if message["type"] == "pid":
                pid = message["pid"]
            elif message["type"] == "cgroup":
                from rootless.cgroups import systemd
                systemd.attach(job.cgroup_unit, message["pid"])
                parent.send("joined")
            elif message["type"] == "warnings":
                for warning in message["warnings"]:
                    warn(warning)
            elif message["type"] == "error":
                if pid is not None:
                    supervise.wait_exit_code(pid)  # it exits after the error; reap it
                raise RootlessError(message["msg"])
    finally:
        parent.close()
        try:
            os.waitpid(stage, 0)
        except ChildProcessError:
            pass
    if pid is None:
        raise RootlessError("exec: the process exited before it started")
    return pid
