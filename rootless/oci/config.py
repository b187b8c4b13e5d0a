"""Loading a bundle: find config.json and the rootfs, parse, validate against the OCI schema,
then check what the schema cannot express. Pure apart from reading the files."""

from rootless import jsonlite as json
import os

from rootless.errors import ConfigError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


class Bundle:
    def __init__(self, path: str, config: dict, rootfs: str):
        self.path = path
        self.config = config
        self.rootfs = rootfs


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
    from rootless.oci.schema import check_config
    check_config(config)
    check_semantics(config)
    root = config["root"]["path"]
    rootfs = root if os.path.isabs(root) else os.path.join(path, root)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f"rootfs {rootfs}: no such directory (root.path in {config_path})")
    return Bundle(path, config, rootfs)


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


def _check_strings(process: dict) -> None:
    """What execve cannot take, refused here rather than after `start` (runc's words for env)."""
    for field in ("args", "env"):
        for index, text in enumerate(process.get(field) or ()):
            if "\0" in text:
                what = "environment variable value can't contain null(\\x00)" if field == "env" else "contains a NUL byte"
                raise ConfigError(f"config.json: process.{field}[{index}]: {what}: {text!r}")
            if not text.isascii():
                try:
                    text.encode()
                except UnicodeEncodeError:
                    raise ConfigError(f"config.json: process.{field}[{index}] is not valid Unicode (a lone "
                                      f"surrogate): {text!r}") from None
            if field == "env" and "=" not in text:
                raise ConfigError(f"config.json: invalid environment variable: {text!r} (use NAME=VALUE)")
    for field in ("cwd",):
        text = process.get(field)
        if isinstance(text, str) and ("\0" in text or not text.isascii() and not _encodable(text)):
            raise ConfigError(f"config.json: process.{field} {text!r} must be a path without NUL bytes or lone surrogates")


def _check_all_strings(config: dict) -> None:
    """Every string of the config becomes a path, an argument or a file's content somewhere:
    a lone surrogate cannot be encoded for any of them, and a NUL byte ends a C string early.
    (Annotations are data for hooks and clients: a NUL byte is theirs to mean.) Iterative:
    the schema does not bound the depth."""
    stack = [(config, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, where or "the top level"))
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(value))
        elif isinstance(value, str):
            if not value.isascii() and not _encodable(value):
                raise ConfigError(f"config.json: {where} is not valid Unicode (a lone surrogate): {value[:100]!r}")
            if "\0" in value and not where.startswith("annotations"):
                raise ConfigError(f"config.json: {where} contains a NUL byte: {value[:100]!r}")


def _encodable(text: str) -> bool:
    try:
        text.encode()
        return True
    except UnicodeEncodeError:
        return False


def check_semantics(config: dict) -> None:
    """Rules of the runtime spec that its JSON schema does not encode."""
    if "root" not in config:
        raise ConfigError("config.json: root is required (root.path names the container's rootfs)")
    process = config.get("process")
    if process is None:
        raise ConfigError("config.json: process is required to create a container")
    if not process.get("args"):
        raise ConfigError("config.json: process.args must name the program to run")
    _check_strings(process)
    _check_all_strings(config)
    if not process.get("cwd", "/").startswith("/"):
        raise ConfigError(f"config.json: process.cwd {process['cwd']!r} must be an absolute path")
    for mount in config.get("mounts", []):
        if not mount.get("destination", "").startswith("/"):
            raise ConfigError(f"config.json: mount destination {mount.get('destination')!r} must be an absolute path")
    if "linux" not in config:
        raise ConfigError("config.json: linux is required (this runtime runs Linux containers)")
    seen = set()
    for ns in config["linux"].get("namespaces", []):
        if ns["type"] in seen:
            raise ConfigError(f"config.json: namespace {ns['type']} is listed twice in linux.namespaces")
        seen.add(ns["type"])
    if "mount" not in seen:
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
