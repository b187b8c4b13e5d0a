"""Loading a bundle: find config.json and the rootfs, parse, read it as runc does (normalize),
validate against the OCI schema, then check what the schema cannot express. Pure apart from
reading the files.

The rule for every check here and in the schema: never refuse a config that runc and crun both
run (docs/differences-from-runc.md, "Validation")."""

from rootless import jsonlite as json
import os

from rootless.errors import ConfigError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


class Bundle:
    def __init__(self, path: str, config: dict, rootfs: str, warnings: tuple = (), notes: tuple = ()):
        self.path = path
        self.config = config
        self.rootfs = rootfs
        self.warnings = warnings  # for the --log file (or stderr), where runc warns
        self.notes = notes        # for --debug, where runc logs at debug level


def load_bundle(bundle: str | None, config_file: str | None = None) -> Bundle:
    path = os.path.abspath(bundle or ".")
    if not os.path.isdir(path):
        raise ConfigError(f"bundle {path}: no such directory")
    config_path = os.path.abspath(config_file) if config_file else os.path.join(path, "config.json")
    try:
        with open(config_path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"open {config_path}: no such file or directory") from None
    except OSError as err:
        raise ConfigError(f"open {config_path}: {err.strerror}") from None
    try:
        config = json.loads(raw)
    except ValueError as err:
        raise ConfigError(f"{config_path}: invalid JSON: {err}") from None
    warnings, notes = normalize(config)
    from rootless.oci.schema import check_config
    check_config(config)
    check_semantics(config)
    root = config["root"]["path"]
    rootfs = root if os.path.isabs(root) else os.path.join(path, root)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f"rootfs {rootfs}: no such directory (root.path in {config_path})")
    return Bundle(path, config, rootfs, tuple(warnings), tuple(notes))


def drop_nulls(node) -> None:
    """Remove, in place, every object member whose value is null: Go's decoder (runc) reads a
    null as the zero value, the same as an absent member, and crun's parser skips it, so
    `"timeOffsets": null` means no offsets. Nulls inside arrays stay (and fail validation)."""
    if isinstance(node, dict):
        for key in [key for key, value in node.items() if value is None]:
            del node[key]
        node = node.values()
    for value in node:
        if isinstance(value, (dict, list)):
            drop_nulls(value)


def normalize(config) -> tuple[list[str], list[str]]:
    """Read config.json as runc does, in place, before validation: (warnings, debug notes)."""
    warnings: list[str] = []
    notes: list[str] = []
    if not isinstance(config, (dict, list)):
        return warnings, notes
    drop_nulls(config)
    if not isinstance(config, dict):
        return warnings, notes
    for mount in config.get("mounts") or ():
        destination = mount.get("destination") if isinstance(mount, dict) else None
        if isinstance(destination, str) and destination and not destination.startswith("/"):
            # runc 1.1 and 1.2 take it as relative to /, with this warning (word for word)
            warnings.append(f"mount destination {destination} is not absolute. Support for non-absolute "
                            "mount destinations will be removed in a future release.")
            mount["destination"] = "/" + destination
    linux = config.get("linux")
    seccomp = linux.get("seccomp") if isinstance(linux, dict) else None
    rules = seccomp.get("syscalls") if isinstance(seccomp, dict) else None
    if isinstance(seccomp, dict) and "listenerPath" in seccomp and not any(
            isinstance(rule, dict) and rule.get("action") == "SCMP_ACT_NOTIFY" for rule in rules or ()):
        # runc and crun connect to the agent only for a filter that notifies
        notes.append(f"linux.seccomp.listenerPath {seccomp['listenerPath']} is not used: no rule has SCMP_ACT_NOTIFY")
        seccomp.pop("listenerPath")
        seccomp.pop("listenerMetadata", None)
    personality = linux.get("personality") if isinstance(linux, dict) else None
    if isinstance(personality, dict) and personality.get("flags"):
        # current runc's warning, word for word (1.1.5 ignores them silently)
        shown = " ".join(map(str, personality["flags"])) if isinstance(personality["flags"], list) else personality["flags"]
        warnings.append(f"ignoring unsupported personality flags: [{shown}] because personality flag has not "
                        "supported at this time")
    return warnings, notes


# Fields this build does not honour yet: refused by name rather than silently ignored.
_NOT_YET = (
    (("linux", "intelRdt"), "linux.intelRdt"), (("linux", "netDevices"), "linux.netDevices"),
)


def _lookup(config: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(config, dict):
            return None
        config = config.get(key)
    return config


def check_semantics(config: dict) -> None:
    """Rules of the runtime spec that its JSON schema does not encode."""
    if "root" not in config:
        raise ConfigError("config.json: root is required (root.path names the container's rootfs)")
    process = config.get("process")
    if process is None:
        raise ConfigError("config.json: process is required to create a container")
    if not process.get("args"):
        raise ConfigError("config.json: process.args must name the program to run")
    if not process.get("cwd", "/").startswith("/"):
        raise ConfigError(f"config.json: process.cwd {process['cwd']!r} must be an absolute path")
    for mount in config.get("mounts", []):
        if not mount.get("destination"):  # a relative one was made absolute by normalize, as runc does
            raise ConfigError("config.json: a mount has no destination")
    if "linux" not in config:
        raise ConfigError("config.json: linux is required (this runtime runs Linux containers)")
    seen = set()
    for ns in config["linux"].get("namespaces", []):
        if ns["type"] in seen:
            raise ConfigError(f"config.json: namespace {ns['type']} is listed twice in linux.namespaces")
        seen.add(ns["type"])
    if "mount" not in seen and (config["linux"].get("maskedPaths") or config["linux"].get("readonlyPaths")):
        # runc's words for this case (its config validator).
        raise ConfigError("config.json: unable to restrict sys entries without a private MNT namespace "
                          "(maskedPaths and readonlyPaths need a mount namespace in linux.namespaces)")
    if "mount" not in seen:
        # Stricter than runc on purpose: runc, as root, would make the mounts in the caller's
        # mount namespace and chroot (docs/differences-from-runc.md, "Filesystem").
        raise ConfigError("config.json: linux.namespaces must include a mount namespace (the rootfs needs one)")
    for field in ("hostname", "domainname"):
        if config.get(field) and "uts" not in seen:
            raise ConfigError(f"config.json: {field} needs a uts namespace in linux.namespaces")
    for path, name in _NOT_YET:
        if _lookup(config, path):
            raise ConfigError(f"config.json: {name} is not supported by this version of rootless")
    if config.get("hooks"):
        from rootless.process import hooks
        hooks.check(config["hooks"])
    if "seccomp" in config["linux"]:
        from rootless.process import seccomp
        seccomp.check(config["linux"]["seccomp"])
    from rootless.process import attrs
    attrs.check(config)
