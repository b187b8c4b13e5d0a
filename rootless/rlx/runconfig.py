"""`rlx run`'s options turned into the container's config.json: pure, so it is unit-tested as
data. The image's config is the base (rootless.images.runspec); every option is one small
change over it, in podman's terms: its default capabilities, the short ID as hostname, the
network from annotations the runtime reads (rootless.network, rootless.ports, rootless.dns),
limits as linux.resources (the runtime's cgroup drivers apply them, or warn in one line).

ID maps: an image runs with the store's map (the map its layers were unpacked with: caller as
0, subordinate IDs from 1); `--userns keep-id` and `host` move the caller to their own UID
inside (podman's keep-id: the subordinate IDs fill the IDs below and above it).
"""

import os

from rootless.errors import UsageError
from rootless.images import runspec

# podman's default capabilities (containers.conf), not runc's template's three
PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
               "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
            "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
            "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
            "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE"]
NETWORKS = ("none", "pasta", "slirp4netns", "host")
CPU_PERIOD = 100000


class RunOptions:
    """What the command line asked for; defaults are podman's."""

    def __init__(self, **fields):
        self.command: list[str] = []
        self.entrypoint: str | None = None
        self.env: list[str] = []
        self.env_files: list[str] = []
        self.workdir: str | None = None
        self.user: str | None = None
        self.volumes: list[str] = []
        self.tmpfs: list[str] = []
        self.publish: list[str] = []
        self.network: str | None = None
        self.dns: list[str] = []
        self.hostname: str | None = None
        self.memory: str | None = None
        self.cpus: float | None = None
        self.pids_limit: int | None = None
        self.cap_add: list[str] = []
        self.cap_drop: list[str] = []
        self.read_only = False
        self.userns: str | None = None
        self.init = False
        self.security_opt: list[str] = []
        self.tty = False
        self.interactive = False
        self.__dict__.update(fields)


def cap_name(text: str) -> str:
    name = text.strip().upper()
    name = name if name.startswith("CAP_") else "CAP_" + name
    if name != "CAP_ALL" and name not in ALL_CAPS:
        raise UsageError(f"unknown capability {text!r}: use a name such as NET_RAW or CAP_SYS_ADMIN")
    return name


def capabilities(add: list[str], drop: list[str], base: list[str] | None = None) -> list[str]:
    caps = list(PODMAN_CAPS if base is None else base)
    added, dropped = [cap_name(c) for c in add], [cap_name(c) for c in drop]
    if "CAP_ALL" in dropped:
        caps = []
    if "CAP_ALL" in added:
        caps = list(ALL_CAPS)
    caps += [c for c in added if c != "CAP_ALL" and c not in caps]
    return [c for c in caps if c not in dropped]


def parse_env(entries: list[str], files: list[str], host_env=os.environ) -> list[str]:
    """-e KEY=VALUE, -e KEY (the host's value, left out when unset), --env-file lines; later
    wins, as with podman."""
    texts: list[str] = []
    for path in files:
        try:
            with open(path) as f:
                texts += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        except OSError as err:
            raise UsageError(f"--env-file {path}: {err.strerror}") from None
    texts += entries
    result = []
    for text in texts:
        if "=" not in text:
            if text in host_env:
                result.append(f"{text}={host_env[text]}")
            continue
        if not text.partition("=")[0]:
            raise UsageError(f"-e {text!r}: the variable has no name (KEY=VALUE)")
        result.append(text)
    return result


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    env = {e.partition("=")[0]: e for e in base}
    for entry in extra:
        env[entry.partition("=")[0]] = entry
    return list(env.values())


def parse_size(text: str, flag: str) -> int:
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    body = text.strip().lower().removesuffix("b") if text.strip().lower()[-2:-1].isalpha() else text.strip().lower()
    factor = units.get(body[-1:], None)
    number = body[:-1] if factor else body
    try:
        value = int(float(number) * (factor or 1))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected a size such as 512m or 1g") from None
    if value <= 0:
        raise UsageError(f"{flag} {text!r}: must be more than 0")
    return value


def keep_id_maps(plan_json: dict | None, uid: int, gid: int) -> dict:
    """podman's keep-id from the store's map {0 -> caller, 1.. -> subordinate}: the caller is
    `uid` inside, the subordinate IDs fill 0..uid-1 and uid+1...; without subordinate IDs only
    the caller is mapped."""
    def entries(mappings: list[dict], own: int, host: int) -> list[dict]:
        subordinate = [m for m in mappings if m["containerID"] != 0]  # 0 is the caller in the store's map
        result, inside = [], 0
        for m in subordinate:
            start, size = m["hostID"], m["size"]
            while size:
                if inside == own:
                    inside += 1
                chunk = size if inside > own else min(size, own - inside)
                result.append({"containerID": inside, "hostID": start, "size": chunk})
                inside, start, size = inside + chunk, start + chunk, size - chunk
        result.append({"containerID": own, "hostID": host, "size": 1})
        return sorted(result, key=lambda m: m["containerID"])
    mappings = plan_json or {"uidMappings": [], "gidMappings": []}
    return {"uidMappings": entries(mappings["uidMappings"], uid, os.getuid()),
            "gidMappings": entries(mappings["gidMappings"], gid, os.getgid())}


def parse_volume(text: str, volumes_dir: str) -> dict:
    """-v SRC:DST[:OPTS] -> {"source", "destination", "options", "named"}. A SRC without a
    slash is a named volume under the store (volumes_dir/NAME/_data)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"-v {text!r}: use SRC:DST[:ro], SRC a host path or a volume name")
    source, destination = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    unknown = [o for o in options if o not in ("ro", "rw", "z", "Z", "U", "nosuid", "nodev", "noexec")]
    if unknown:
        raise UsageError(f"-v {text!r}: unknown option {unknown[0]!r} (ro or rw)")
    if not destination.startswith("/"):
        raise UsageError(f"-v {text!r}: the destination {destination!r} must be an absolute path")
    named = "/" not in source and not source.startswith(".")
    if named:
        if not source.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise UsageError(f"-v {text!r}: volume names use letters, digits, _ . -")
        source = os.path.join(volumes_dir, source, "_data")
    else:
        source = os.path.abspath(source)
    mount_options = ["rbind", "ro" if "ro" in options else "rw"] + [o for o in options if o.startswith("no")]
    return {"source": source, "destination": destination, "options": mount_options, "named": named}


def parse_tmpfs(text: str) -> dict:
    destination, _, opts = text.partition(":")
    if not destination.startswith("/"):
        raise UsageError(f"--tmpfs {text!r}: the destination must be an absolute path")
    options = opts.split(",") if opts else ["rw", "nosuid", "nodev"]
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options}


def apply(spec: dict, opts: RunOptions, *, hostname: str, volumes: list[dict], network: str) -> dict:
    """The options over a spec made from the image (or for `host`). volumes: parse_volume's."""
    process = spec["process"]
    process["terminal"] = bool(opts.tty)
    process["capabilities"] = {k: capabilities(opts.cap_add, opts.cap_drop, process.get("_caps"))
                               for k in ("bounding", "effective", "permitted")}
    process.pop("_caps", None)
    process["env"] = merge_env(process.get("env", []), parse_env(opts.env, opts.env_files))
    if opts.tty and not any(e.startswith("TERM=") for e in process["env"]):
        process["env"].append("TERM=xterm")
    if opts.workdir:
        if not opts.workdir.startswith("/"):
            raise UsageError(f"-w {opts.workdir!r}: give an absolute path")
        process["cwd"] = opts.workdir
    spec["hostname"] = opts.hostname or hostname
    mounts = spec.setdefault("mounts", [])
    for volume in volumes:
        mounts.append({"destination": volume["destination"], "type": "bind", "source": volume["source"],
                       "options": volume["options"]})
    tmpfs = [parse_tmpfs(t) for t in opts.tmpfs]
    if opts.read_only:
        spec["root"]["readonly"] = True
        taken = {t["destination"] for t in tmpfs} | {v["destination"] for v in volumes}
        tmpfs += [parse_tmpfs(d) for d in ("/tmp", "/var/tmp", "/run") if d not in taken]
    mounts += tmpfs
    resources = {}
    if opts.memory:
        resources["memory"] = {"limit": parse_size(opts.memory, "--memory")}
    if opts.cpus is not None:
        if opts.cpus <= 0:
            raise UsageError(f"--cpus {opts.cpus}: must be more than 0")
        resources["cpu"] = {"quota": int(opts.cpus * CPU_PERIOD), "period": CPU_PERIOD}
    if opts.pids_limit is not None:
        resources["pids"] = {"limit": opts.pids_limit}
    if resources:
        spec["linux"]["resources"] = resources
    annotations = spec.setdefault("annotations", {})
    annotations["rootless.network"] = network
    if network == "host":
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
    elif network != "none":
        annotations["rootless.dns"] = ",".join(opts.dns) if opts.dns else "auto"
    if opts.publish:
        if network not in ("pasta", "slirp4netns"):
            raise UsageError(f"-p needs --network pasta or slirp4netns (not {network})")
        annotations["rootless.ports"] = ",".join(opts.publish)
    if opts.dns and network in ("none", "host"):
        raise UsageError(f"--dns needs --network pasta or slirp4netns (not {network})")
    return spec


def command_of(image_config: dict, opts: RunOptions) -> dict:
    """The image config with --entrypoint and COMMAND over Entrypoint and Cmd (docker's rule:
    --entrypoint clears the image's Cmd)."""
    config = dict(image_config)
    cfg = dict(config.get("config") or {})
    if opts.entrypoint is not None:
        cfg["Entrypoint"] = [opts.entrypoint] if opts.entrypoint else []
        cfg["Cmd"] = []
    if opts.command:
        cfg["Cmd"] = list(opts.command)
    config["config"] = cfg
    return config


def image_spec(image_config: dict, opts: RunOptions, passwd: str, group: str, idmap: dict | None) -> dict:
    """The spec of an image (its Entrypoint/Cmd, Env, WorkingDir, User) with -u and keep-id."""
    spec = runspec.to_spec(command_of(image_config, opts), passwd, group, idmap)
    process = spec["process"]
    if opts.user:
        uid, gid, extra = runspec.resolve_user(opts.user, passwd, group)
        process["user"] = {"uid": uid, "gid": gid}
    if opts.userns == "keep-id":
        spec["linux"].update(keep_id_maps(idmap, os.getuid(), os.getgid()))
        if not opts.user:
            process["user"] = {"uid": os.getuid(), "gid": os.getgid()}
    elif opts.userns not in (None, "", "host" if idmap is None else None):
        raise UsageError(f"--userns {opts.userns!r}: only keep-id is supported")
    return spec


def host_spec(opts: RunOptions, cwd: str, host_dirs: list[str], shell: str = "/bin/sh") -> dict:
    """`rlx run host`: the host's /usr and /etc read-only (and /bin, /lib, ... as the host has
    them: the caller puts the merged-/usr symlinks in the root, host_dirs are the real
    directories to bind instead), a
    private /tmp, `cwd` writable at the same path, the caller's own UID inside (one ID mapped:
    no subordinate IDs needed)."""
    from rootless.oci.specgen import default_spec
    spec = default_spec(rootless=True, args=list(opts.command) or [shell], terminal=False)
    uid, gid = os.getuid(), os.getgid()
    spec["linux"]["uidMappings"] = [{"containerID": uid, "hostID": uid, "size": 1}]
    spec["linux"]["gidMappings"] = [{"containerID": gid, "hostID": gid, "size": 1}]
    process = spec["process"]
    process["user"] = {"uid": uid, "gid": gid}
    process["cwd"] = cwd
    process["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"HOME={cwd}",
                      f"USER={os.environ.get('USER', '')}"]
    process["_caps"] = []  # the caller's own UID: no capabilities, as outside
    spec["root"]["readonly"] = False
    mounts = spec["mounts"]
    # the host's sysfs bind and cgroup mount are left out: a sandbox needs neither
    mounts[:] = [m for m in mounts if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    for path in ["/usr", "/etc"] + host_dirs:
        mounts.append({"destination": path, "type": "bind", "source": path, "options": ["rbind", "ro"]})
    mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]})
    mounts.append({"destination": cwd, "type": "bind", "source": cwd, "options": ["rbind", "rw"]})
    return spec


def network_default(which) -> str:
    """pasta when installed, else slirp4netns (else none)."""
    for name in ("pasta", "slirp4netns"):
        if which(name):
            return name
    return "none"
