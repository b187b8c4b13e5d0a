"""Stage 1 of create: the CLI process's side. It plans everything from config.json (pure, so bad
input fails before anything exists), makes the state directory, hands the namespace stage its
job (the stage was forked before the planning, rootless.create.stagefork), writes the ID maps
when asked, and records the container once its init is ready.

Every resource it makes has one owner here: on any failure the init and the namespace stage
are killed and the state directory removed, so a failed create leaves nothing behind.
"""

import os
import pwd
import time
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)

from rootless.oci import config as bundle_config
from rootless.oci import mounts, namespaces
from rootless import paths, state
from rootless.linux import procfs
from rootless.create import protocol, stagefork
from rootless.create.protocol import InitJob
from rootless.errors import RootlessError, fault

# What the namespace stage and the init read of an InitJob (rootless.create.nsstage, .init).
_STAGE_FIELDS = ("container_id", "config", "bundle", "rootfs", "ns_plan", "mount_plan", "no_pivot",
                 "no_new_keyring", "preserve_fds", "listen_fds", "may_mknod", "console_fd", "state_dir_fd",
                 "starts_at_once")


class Request:
    """The create/run flags that shape a container."""

    def __init__(self, container_id: str, bundle: str | None, config_file: str | None = None,
                 pid_file: str | None = None, console_socket: str | None = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0, console_fd: int | None = None,
                 annotations: dict | None = None):
        self.container_id, self.bundle, self.config_file = container_id, bundle, config_file
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.console_socket, self.no_pivot, self.no_new_keyring = console_socket, no_pivot, no_new_keyring
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd        # a connected socket given by `run` instead of a path
        self.annotations = annotations or {}  # set by flags (--network...), over config.json's
        self.record_extra: dict = {}          # more for state.json (the shim's whereabouts)


def _listen_fds(env) -> int:
    """systemd socket activation: LISTEN_FDS fds from 3 on, when they are meant for us."""
    count = env.get("LISTEN_FDS", "")
    if not count.isdigit() or env.get("LISTEN_PID", str(os.getpid())) != str(os.getpid()):
        return 0
    return int(count)


def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _plan_idmaps(linux: dict, privileged: bool, name: str | None):
    from idmap import apply as idmap_apply
    from idmap import plan as idmap_plan
    from idmap import subid
    uid, gid = os.getuid(), os.getgid()
    return idmap_plan.plan_idmaps(
        linux.get("uidMappings"), linux.get("gidMappings"), caller_uid=uid, caller_gid=gid, caller_name=name,
        subuid=subid.read_subid_ranges(name, uid, paths.SUBUID), subgid=subid.read_subid_ranges(name, uid, paths.SUBGID),
        have_newuidmap=idmap_apply.find_helper("newuidmap") is not None,
        have_newgidmap=idmap_apply.find_helper("newgidmap") is not None, privileged=privileged)


def prepare(ctx, request: Request) -> InitJob:
    """Everything decided from the bundle and the caller, before anything is made."""
    bundle = bundle_config.load_bundle(request.bundle, request.config_file)
    config = bundle.config
    for warning in bundle.warnings:
        ctx.warn(warning)
    for note in bundle.notes:
        ctx.trace(note)
    if request.annotations:
        config["annotations"] = {**config.get("annotations", {}), **request.annotations}
        entries = config["linux"].setdefault("namespaces", [])
        if request.annotations.get("rootless.network", "host") != "host" and \
                not any(ns["type"] == "network" for ns in entries):
            # --network MODE asks for a network of the container's own (runc's rootless
            # template has no network namespace).
            entries.append({"type": "network"})
    privileged = os.geteuid() == 0
    initial_userns = paths.in_initial_userns()
    ns_plan = namespaces.plan_namespaces(config["linux"], privileged=privileged, in_initial_userns=initial_userns)
    caller = _user_name(os.getuid())
    owner = caller if os.geteuid() == os.getuid() else _user_name(os.geteuid())
    idmaps = _plan_idmaps(config["linux"], privileged, caller) if ns_plan.new_user else None
    mount_plan = mounts.plan_rootfs(config, bundle.path)
    mounts.resolve_idmaps(mount_plan, config["linux"], in_initial_userns=initial_userns)
    terminal = bool(config["process"].get("terminal"))
    seccomp_filter = None
    if "seccomp" in config["linux"]:
        # Compiled here (or found compiled before), before anything exists: errors come first,
        # and libseccomp stays out of the container. The filter survives the fork.
        from rootless.process import seccomp_cache
        seccomp_filter, seccomp_warnings = seccomp_cache.compile(config["linux"]["seccomp"])
        for warning in seccomp_warnings:
            ctx.trace(warning)
    if request.console_socket and not terminal:
        raise RootlessError("--console-socket needs process.terminal: true in config.json")
    cgroup = _plan_cgroup(ctx, config, request.container_id, rootless=not privileged or not initial_userns)
    ctx.trace(ns_plan.describe())
    if idmaps is not None:
        ctx.trace(idmaps.describe())
        for warning in idmaps.warnings:
            ctx.warn(warning)
    network = _plan_network(ctx, config, ns_plan)
    notify_socket = os.environ.get("NOTIFY_SOCKET")
    if notify_socket:
        from rootless import notify
        mount_plan += notify.plan_mounts(os.path.join(os.path.abspath(ctx.root), request.container_id))
        config["process"]["env"] = config["process"].get("env", []) + [f"NOTIFY_SOCKET={notify.CONTAINER_SOCKET}"]
    if network is not None and network.dns is not None:
        from netns import dns
        mount_plan += dns.plan_mounts(os.path.join(os.path.abspath(ctx.root), request.container_id))
    ctx.trace("mount plan:\n" + mounts.describe(mount_plan))
    if ctx.debug:
        from rootless.create import initwait
        if not os.path.exists(initwait.PROGRAM):
            ctx.trace(f"{initwait.PROGRAM} is not built (no C compiler at install time): the created init waits "
                      "as Python, with about 8 MiB more memory")
    return InitJob(
        container_id=request.container_id, config=config, bundle=bundle.path, rootfs=bundle.rootfs,
        ns_plan=ns_plan, idmaps=idmaps, mount_plan=mount_plan, no_pivot=request.no_pivot,
        no_new_keyring=request.no_new_keyring, preserve_fds=request.preserve_fds,
        listen_fds=_listen_fds(os.environ), terminal=terminal, notify=bool(notify_socket),
        # mknod works for real root only; in any user namespace /dev nodes are bind mounts.
        may_mknod=privileged and initial_userns and not ns_plan.new_user,
        rootless=not privileged or not initial_userns,
        seccomp_filter=seccomp_filter, owner=owner or str(os.geteuid()), console_fd=None, state_dir_fd=None,
        network=network, cgroup=cgroup, starts_at_once=False)


def _plan_cgroup(ctx, config: dict, container_id: str, rootless: bool):
    """rootless.cgroups.manager's Cgroup to make, or a record of why there is none. Where
    nothing can be made and nothing is asked for, none of rootless/cgroups is loaded."""
    limits = {k: v for k, v in (config["linux"].get("resources") or {}).items() if k != "devices" and v}
    manager = ctx.effective_cgroup_manager
    required = ctx.cgroups_required or (config.get("annotations") or {}).get("rootless.cgroups") == "required"
    if rootless and (config["linux"].get("resources") or {}).get("devices") and any(
            isinstance(m, dict) and str(m.get("source") or "").startswith("/dev") for m in config.get("mounts") or ()):
        _check_device_rules(ctx, config, container_id, required)
    if not limits and not required:
        if manager == "disabled":
            return {"driver": "none", "reason": "--cgroup-manager disabled"}
        if not os.path.exists(os.path.join(paths.CGROUP_MOUNT, "cgroup.controllers")):
            return {"driver": "none", "reason": f"{paths.CGROUP_MOUNT} is not a cgroup v2 hierarchy (cgroup v1 or hybrid host)"}
    from rootless.cgroups import manager as cgroups
    plan = cgroups.plan(config, container_id, manager, rootless=rootless, env=os.environ)
    ctx.trace(plan.describe())
    if plan.driver == "none":
        not_applied = cgroups.check_required(plan, container_id, required)
        message = cgroups.warning(not_applied, plan.reason, plan.translation.inapplicable)
        if message:
            ctx.warn(message)
        return {"driver": "none", "reason": plan.reason}
    return cgroups.Cgroup(plan, container_id, required=required)


def _check_device_rules(ctx, config: dict, container_id: str, required: bool) -> None:
    """A rootless container gets no device filter: the kernel loads one only for CAP_SYS_ADMIN
    in the initial user namespace. What it can open is then what the host's permissions allow
    on the nodes it is given; the rules (and runc, which allows its default nodes after them)
    would change that only for the host's nodes bound in from /dev: those
    the rules deny are named, once, or refused when cgroups are required. rootless/cgroups is
    loaded only for a config that binds something of /dev (runc's templates deny every device)."""
    from rootless.cgroups import devices
    rules = devices.rules_of(config["linux"])
    denied = devices.unenforced(rules, devices.bound_nodes(config.get("mounts")))
    if not denied:
        return
    shown = ", ".join(denied[:8]) + (f" and {len(denied) - 8} more" if len(denied) > 8 else "")
    why = ("a rootless container cannot have a device filter (the kernel loads a BPF_PROG_TYPE_CGROUP_DEVICE "
           "program only for CAP_SYS_ADMIN in the initial user namespace)")
    if required:
        raise RootlessError(f"cannot create container {container_id}: linux.resources.devices deny {shown}, bound "
                            f"in by a bind mount, but {why} (rootless.cgroups=required): remove the bind mount")
    ctx.warn(f"linux.resources.devices not enforced: {why}; the container can open {shown} as far as the "
             "host's permissions on the node allow")


def _join_cgroup(ctx, job: InitJob, pid: int) -> None:
    """The "cgroup" step of rootless.create.protocol: the stage `pid` goes into the container's
    cgroup, made for it, with the limits written, before it creates any namespace."""
    not_applied = job.cgroup.join(pid)
    from rootless.cgroups import manager as cgroups
    reason = job.cgroup.plan.reason or cgroups.NOT_DELEGATED.format(path=job.cgroup.path)
    if not_applied and job.cgroup.required:
        raise RootlessError(f"cannot create container {job.container_id}: {', '.join(not_applied)} cannot be "
                            f"applied: {reason} (rootless.cgroups=required)")
    message = cgroups.warning(not_applied, reason, job.cgroup.plan.translation.inapplicable)
    if message:
        ctx.warn(message)


def _plan_network(ctx, config: dict, ns_plan):
    """netns.config's plan when the bundle asks for networking by annotation, else None (and
    nothing of netns/ beyond lo is imported)."""
    annotations = config.get("annotations") or {}
    if not any(key in annotations for key in ("rootless.network", "rootless.ports", "rootless.dns")):
        return None
    from netns import config as network_config
    plan = network_config.plan_network(annotations, new_netns="network" in ns_plan.new_types,
                                       joined_netns=any(t == "network" for t, _ in ns_plan.join))
    ctx.trace(plan.describe())
    return plan


def _connect_console(path: str) -> int:
    from rootless.linux import unixsock
    return unixsock.connect(path, "console socket").detach()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _for_stage(job: InitJob) -> InitJob:
    fields = {name: getattr(job, name) for name in _STAGE_FIELDS}
    fields["own_cgroup"] = not isinstance(job.cgroup, dict)
    program = job.seccomp_filter
    # The BPF only: libseccomp's own filter object (kept for --debug and tests) stays here.
    fields["seccomp_filter"] = program and type(program)(program.bpf, program.flags, program.notify)
    return InitJob(**fields)


def create(ctx, request: Request, *, subreaper: bool = False, job: InitJob | None = None,
           stage: stagefork.Stage | None = None) -> tuple[state.ContainerDir, dict]:
    """Create the container; its init waits on exec.fifo. With subreaper the init becomes our
    child (for `run`, which waits for it). job: what prepare() returned, if called already;
    stage: the namespace stage, if forked already (else it is forked here)."""
    job = job or prepare(ctx, request)
    if job.terminal and not (request.console_socket or request.console_fd is not None):
        raise RootlessError("process.terminal is true: give --console-socket, or set terminal to false in config.json")
    cdir = state.ContainerDir(ctx.root, request.container_id)
    cdir.make()
    fault("create:made")
    pids = {"stage": None, "init": None}   # children to kill if anything fails
    parent = None
    network = None                          # the network helper's record, once attached
    try:
        pids["stage"], parent = (stage or stagefork.fork()).take()
        if job.config.get("hooks"):
            from rootless.process import hooks  # before the fork: the init runs hooks with it too
            hooks.save(cdir.path, job.config["hooks"])
        cdir.make_fifo()
        if job.notify:
            from rootless import notify
            notify.make_directory(cdir.path)
        if job.network is not None and job.network.dns is not None:
            from netns import dns
            dns.write_files(job.network, cdir.path, job.config.get("hostname"))
        job.state_dir_fd = os.open(cdir.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if job.terminal:
            job.console_fd = request.console_fd
            if request.console_socket:
                job.console_fd = _connect_console(request.console_socket)
        if subreaper:
            from rootless.process import supervise
            supervise.adopt_orphans()
        _make_idmapped_trees(job)
        _unless_gone(pids, parent.send_job, _for_stage(job))
        _close_idmapped_trees(job)
        fault("create:forked")
        os.close(job.state_dir_fd)
        if request.console_socket:
            os.close(job.console_fd)
        ready, (record, put_in_place) = _follow_protocol(
            ctx, parent, job, pids, meanwhile=lambda pid: _while_the_init_sets_up(ctx, request, cdir, job, pid))
        init_pid = pids["init"]
        fault("create:ready")
        for warning in ready.get("warnings", []):
            ctx.warn(warning)
        for note in ready.get("notes", []):
            ctx.trace(note)
        if job.network is not None:
            from netns import attach
            network = attach.attach(job.network, init_pid, cdir.path,
                                    userns=job.ns_plan.new_user or any(t == "user" for t, _ in job.ns_plan.join))
            if ctx.debug and network.get("helper"):
                from netns import inspect  # pyroute2: about 200 ms, paid under --debug only
                seen = inspect.addresses_and_routes(init_pid)
                ctx.trace(f"network: {', '.join(seen['addresses'])}; routes: {', '.join(seen['routes'])}")
        fault("create:network")
        if network is not None:
            record["network"] = network
            cdir.save(record)
        else:
            put_in_place()
        fault("create:saved")
        if request.pid_file:
            state.write_pid_file(request.pid_file, init_pid)
        _send(parent, pids, "ack")
        parent.close()
        return cdir, record
    except BaseException:
        _close_idmapped_trees(job)
        if network is not None:
            from netns import attach
            attach.detach(network)
        for pid in pids.values():
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if pids["stage"]:
            _reap(pids["stage"])
        if pids["init"] and subreaper:
            _reap(pids["init"])
        elif pids["init"]:
            # Not our child: SIGKILL is only queued, and a dying init (its mounts and namespaces
            # torn down) outlived the CLI under load. A failed create leaves no process.
            procfs.wait_gone(pids["init"], None, timeout=10.0)
        if not isinstance(job.cgroup, dict):
            try:
                job.cgroup.remove()
            except RootlessError as err:
                ctx.warn(f"the failed container's cgroup is left: {err.message}")
        if parent is not None:
            parent.close()
        cdir.remove()
        if request.pid_file and pids["init"]:
            try:
                os.unlink(request.pid_file)
            except FileNotFoundError:
                pass
        raise


def _make_idmapped_trees(job: InitJob) -> None:
    """Real root makes the idmapped mounts here, as runc's parent does: the kernel wants the
    right to idmap the source's filesystem (CAP_SYS_ADMIN in the host's user namespace), which
    an init in a user namespace of its own has lost. The init attaches them (mountext)."""
    if job.rootless:
        return
    ops = [op for op in job.mount_plan if op.kind == "mount" and op.idmap
           and (op.idmap_userns != mounts.OWN_USERNS or op.idmap[0] is not None)]
    if ops:
        from rootless.rootfs import mountext
        for op in ops:
            userns = None if op.idmap_userns == mounts.OWN_USERNS else op.idmap_userns
            op.tree_fd = mountext.idmapped_tree(op, userns, shown=job.rootfs + op.destination)


def _close_idmapped_trees(job: InitJob) -> None:
    for op in job.mount_plan:
        if op.kind == "mount" and op.tree_fd is not None:
            os.close(op.tree_fd)
            op.tree_fd = None


def _while_the_init_sets_up(ctx, request: Request, cdir: state.ContainerDir, job: InitJob, init_pid: int):
    """What nothing before "ready" waits for, done while the init mounts (milliseconds in which
    this process would only wait): the copy of config.json that exec reads, the container's
    record written beside state.json, and the module `run`'s start imports. Returns the record
    and what puts it in place once the init is ready."""
    cdir.save_config(job.config)
    from rootless import container  # noqa: F401
    record = _record(ctx, request, job, init_pid)
    return record, cdir.prepare_save(record)


def _record(ctx, request: Request, job: InitJob, init_pid: int) -> dict:
    """state.json's record of the container (its network, if any, is added once attached)."""
    record = {
        "ociVersion": job.config.get("ociVersion", ""), "id": request.container_id, "pid": init_pid,
        "pid_start": procfs.start_time(init_pid), "bundle": job.bundle, "rootfs": job.rootfs,
        "created": state.rfc3339_now(), "owner": job.owner, "annotations": job.config.get("annotations", {}),
        "namespaces": {"new": job.ns_plan.new_types + (["user"] if job.ns_plan.new_user else []),
                       "joined": dict(job.ns_plan.join)},
        "cgroup_manager": ctx.effective_cgroup_manager, "rootless": job.rootless,
        "cgroup": job.cgroup if isinstance(job.cgroup, dict) else job.cgroup.record(),
    }
    if job.config["linux"].get("resources"):
        record["resources"] = job.config["linux"]["resources"]
    if job.notify:
        record["notify"] = True
    record.update(request.record_extra)
    return record


def _follow_protocol(ctx, parent: protocol.Channel, job: InitJob, pids: dict, meanwhile) -> tuple[dict, object]:
    """The parent's half of rootless.create.protocol, up to "ready"; fills pids["init"] with the
    init's host PID and clears pids["stage"] once that stage is reaped; calls meanwhile(PID) then.
    Returns the "ready" message (its warnings and notes) and what meanwhile returned."""
    def reap_stage() -> None:
        _reap(pids["stage"])
        pids["stage"] = None

    meanwhile_result = None
    while True:
        message = parent.receive()
        if message is None:
            raise RootlessError(_what_died(pids))
        kind = message["type"]
        if kind == "cgroup":
            _join_cgroup(ctx, job, message["pid"])
            parent.send("joined")
        elif kind == "userns":
            from idmap import apply as idmap_apply
            idmap_apply.apply_idmap_plan(job.idmaps, message["pid"])
            fault("create:mapped")
            _send(parent, pids, "mapped")
        elif kind == "init":
            pids["init"] = message["pid"]
            reap_stage()
            meanwhile_result = meanwhile(message["pid"])
        elif kind in ("hooks", "ready") and pids["init"] is None:
            raise RootlessError(f"protocol error: {kind!r} before the init's PID")
        elif kind == "hooks":
            # The init waits before pivot_root while prestart and createRuntime run here.
            _send(parent, pids, "continue", state=_run_runtime_hooks(job, pids["init"]))
        elif kind == "ready":
            return message, meanwhile_result
        elif kind == "error":
            if pids["stage"]:
                reap_stage()
            raise RootlessError(message["msg"])


def _send(parent: protocol.Channel, pids: dict, message_type: str, **fields) -> None:
    _unless_gone(pids, parent.send, message_type, **fields)


def _unless_gone(pids: dict, send, *args, **fields) -> None:
    """send(...) to the stage or the init; if it has gone, which one did and how."""
    try:
        send(*args, **fields)
    except BrokenPipeError:
        raise RootlessError(_what_died(pids)) from None


def _what_died(pids: dict) -> str:
    """Which stage ended the protocol early, and how: its exit status or signal."""
    if pids["stage"]:
        pid, status = os.waitpid(pids["stage"], 0)
        pids["stage"] = None
        return f"the namespace stage {_how(status)} before the container was ready"
    pid = pids["init"]
    status = None
    try:
        status = os.waitpid(pid, 0)[1]  # our child under `run`; it has closed the pipe: it is gone
    except ChildProcessError:
        pass
    # Not our child: its exit code is in /proc/PID/stat while it is a zombie. It closed the
    # pipe before it became one, so wait a moment for that.
    for _ in range(50 if status is None else 0):
        fields = procfs.stat_fields(pid)
        if not fields or fields[0] in ("Z", "X"):
            if fields and len(fields) > 49:
                status = int(fields[49])
            break
        time.sleep(0.002)
    how = _how(status) if status is not None else "died"
    return f"the container init (pid {pid}) {how} before it was ready"


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        names = {getattr(signal, n): n for n in ("SIGKILL", "SIGTERM", "SIGSEGV", "SIGABRT", "SIGINT", "SIGHUP",
                                                  "SIGBUS", "SIGPIPE", "SIGQUIT") if hasattr(signal, n)}
        return f"was killed by signal {number}" + (f" ({names[number]})" if number in names else "")
    return f"exited with status {os.WEXITSTATUS(status)}"


def _run_runtime_hooks(job: InitJob, init_pid: int) -> dict:
    """prestart then createRuntime, here in the runtime namespaces, while the init waits before
    pivot_root. Returns the state for the init's own hooks (createContainer, startContainer)."""
    from rootless.process import hooks
    record = {"ociVersion": job.config.get("ociVersion", ""), "id": job.container_id, "bundle": job.bundle,
              "annotations": job.config.get("annotations", {})}
    state = hooks.state_for(record, "creating", init_pid)
    for kind in ("prestart", "createRuntime"):
        hooks.run_all(kind, job.config.get("hooks"), state)
    return state
