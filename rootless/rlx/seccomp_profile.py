"""Seccomp profiles in the containers format (podman's /usr/share/containers/seccomp.json,
Docker's default.json) made into the OCI spec's linux.seccomp for one container, as
containers/common's pkg/seccomp does for podman. Pure: the caller gives the container's bounding
capabilities, the architecture (libseccomp's name of the native one: amd64, arm64, ...) and the
kernel's release.

The containers format is the OCI one plus conditions, resolved here once per container:
- `archMap`: the entry whose `architecture` is the native one gives `architectures` (it and its
  `subArchitectures`, in that order); no entry, or an architecture containers/common has no
  entry for, gives none (libseccomp then takes the native one alone).
- each group of `syscalls` is kept or dropped by its `excludes` (dropped when its `arches`
  names the native one, when the container holds any of its `caps`, when the kernel is at
  least its `minKernel`) and its `includes` (dropped unless its `arches` names the native one,
  unless the container holds all of its `caps`, unless the kernel is at least its
  `minKernel`), in that order; what is kept keeps the profile's order.
- `errnoRet` and `defaultErrnoRet` are copied as they are; an ERRNO without one is left
  without one (the runtime's default, EPERM). The `errno`/`defaultErrno` names and `comment`
  are not read (containers/common does not either).
- `args` keep index, value and op, and valueTwo when it is not 0 (the spec's Go type omits it).

The output is a function of its inputs alone, keys in a fixed order, so the same container
gets the same dict on every run and the runtime's cache of compiled filters
(rootless/process/seccomp_cache.py) finds it.
"""

import os

from rootless import jsonlite as json
from rootless.errors import UsageError

# podman's file, and the one an administrator puts over it (containers.conf's seccomp_profile default)
DEFAULT_PATHS = ("/etc/containers/seccomp.json", "/usr/share/containers/seccomp.json")

# uname's machine -> libseccomp's name of it (the names includes/excludes `arches` use)
NATIVE = {"x86_64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
          "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "mips64": "mips64", "riscv64": "riscv64",
          "loongarch64": "loong64"}
# libseccomp's native name -> the archMap entry it selects (containers/common knows these only)
ARCH_MAP = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "mips64": "SCMP_ARCH_MIPS64",
            "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
            "mipsel64n32": "SCMP_ARCH_MIPSEL64N32", "s390x": "SCMP_ARCH_S390X"}
# what the containers format adds to a group: one of these marks a file as that format
_CONDITIONS = ("includes", "excludes", "name", "comment")


def native_arch(machine: str | None = None) -> str:
    machine = machine or os.uname().machine
    return NATIVE.get(machine, machine)


def kernel_version(release: str) -> tuple[int, int]:
    """"6.1.0-13-amd64" -> (6, 1): only the version and the major revision count, so
    3.12.25-gentoo, 3.12-1-amd64 and 3.12-rc5 are all 3.12 (Docker's rule)."""
    parts = str(release).split(".", 2)
    try:
        return int(parts[0]), int(_leading_digits(parts[1]))
    except (IndexError, ValueError):
        raise UsageError(f"seccomp profile: kernel version {release!r}: expected one such as 4.8") from None


def _leading_digits(text: str) -> str:
    end = 0
    while end < len(text) and text[end].isdigit():
        end += 1
    return text[:end]


def is_containers_format(profile: dict) -> bool:
    """A file that uses archMap, or groups with conditions, is the containers format; anything
    else is taken as an OCI LinuxSeccomp and used as it is."""
    if "archMap" in profile:
        return True
    return any(isinstance(group, dict) and any(key in group for key in _CONDITIONS)
               for group in profile.get("syscalls") or [])


def convert(profile: dict, caps: list[str], arch: str, kernel: str) -> dict | None:
    """linux.seccomp for a container with bounding set `caps` on `arch` (native_arch's name)
    and a kernel whose release is `kernel`; None for a profile with neither a default action
    nor groups (seccomp off, as containers/common reads it)."""
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    if profile.get("architectures") and profile.get("archMap"):
        raise UsageError("the seccomp profile has both 'architectures' and 'archMap': use one of them")
    result: dict = {"defaultAction": profile.get("defaultAction", "")}
    if profile.get("defaultErrnoRet") is not None:
        result["defaultErrnoRet"] = profile["defaultErrnoRet"]
    architectures = list(profile.get("architectures") or [])
    wanted = ARCH_MAP.get(arch)
    for entry in profile.get("archMap") or []:
        if wanted is not None and entry.get("architecture") == wanted:
            architectures += [entry["architecture"]] + list(entry.get("subArchitectures") or [])
            break
    if architectures:
        result["architectures"] = architectures
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            result[key] = profile[key]
    held = set(caps)
    groups = []
    for group in profile.get("syscalls") or []:
        if _applies(group, held, arch, kernel):
            groups.append(_group(group))
    if groups:
        result["syscalls"] = groups
    return result


def _applies(group: dict, held: set[str], arch: str, kernel: str) -> bool:
    """containers/common's order; the kernel's release is read only for a minKernel."""
    excludes, includes = group.get("excludes") or {}, group.get("includes") or {}
    if arch in (excludes.get("arches") or []):
        return False
    if any(cap in held for cap in excludes.get("caps") or []):
        return False
    if excludes.get("minKernel") and kernel_version(kernel) >= kernel_version(excludes["minKernel"]):
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(cap not in held for cap in includes.get("caps") or []):
        return False
    if includes.get("minKernel") and kernel_version(kernel) < kernel_version(includes["minKernel"]):
        return False
    return True


def _group(group: dict) -> dict:
    names = list(group.get("names") or [])
    if group.get("name"):
        if names:
            raise UsageError("a seccomp profile group has both 'name' and 'names': use one of them")
        names = [group["name"]]
    result = {"names": names, "action": group.get("action", "")}
    if group.get("errnoRet") is not None:
        result["errnoRet"] = group["errnoRet"]
    args = []
    for arg in group.get("args") or []:
        entry = {"index": arg.get("index", 0), "value": arg.get("value", 0)}
        if arg.get("valueTwo"):
            entry["valueTwo"] = arg["valueTwo"]
        entry["op"] = arg.get("op", "")
        args.append(entry)
    if args:
        result["args"] = args
    return result


def read(path: str) -> dict:
    """A profile file of either format, for `--security-opt seccomp=PATH`."""
    return _read(path, f"--security-opt seccomp={path}")


def _read(path: str, what: str, hint: str = "") -> dict:
    try:
        with open(path, "rb") as f:
            profile = json.loads(f.read())
    except OSError as err:
        raise UsageError(" ".join(filter(None, (f"{what}: {err.strerror}", hint)))) from None
    except ValueError as err:
        raise UsageError(" ".join(filter(None, (f"{what}: not JSON: {err}", hint)))) from None
    if not isinstance(profile, dict):
        raise UsageError(f"{what}: expected a JSON object (a seccomp profile)")
    return profile


def conf_files(env=os.environ) -> list[str]:
    """containers.conf files in podman's order, later ones overriding: CONTAINERS_CONF alone
    when set; else the system's, their drop-ins, and for an unprivileged user their own."""
    if env.get("CONTAINERS_CONF"):
        return [env["CONTAINERS_CONF"]]
    files = []
    folders = ["/usr/share/containers", "/etc/containers"]
    if os.geteuid() != 0:
        folders.append(os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "/"), ".config"),
                                    "containers"))
    for folder in folders:
        files.append(os.path.join(folder, "containers.conf"))
        try:
            files += sorted(os.path.join(folder, "containers.conf.d", name)
                            for name in os.listdir(os.path.join(folder, "containers.conf.d")) if name.endswith(".conf"))
        except OSError:
            pass
    return files


def configured(files: list[str]) -> tuple[str, str] | None:
    """(file, value) of the last `seccomp_profile` the containers.conf `files` set, or None.
    tomllib costs tens of milliseconds to import here: only a file that names the key
    outside a comment is parsed."""
    found = None
    for path in files:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if not any(line.lstrip().startswith("seccomp_profile") for line in text.splitlines()):
            continue
        import tomllib
        try:
            value = tomllib.loads(text).get("containers", {}).get("seccomp_profile")
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"{path}: {err}") from None
        if value is not None:
            found = (path, str(value))
    return found


def default_profile(debug, paths=DEFAULT_PATHS, env=os.environ) -> dict | None:
    """podman's default profile: containers.conf's `seccomp_profile` when one sets it, else the
    first of `paths` that exists; None when unconfined, or when there is none (the
    distribution's choice, said under --debug only)."""
    setting = configured(conf_files(env))
    if setting is not None and setting[1] == "unconfined":
        debug(f"seccomp: unconfined (seccomp_profile in {setting[0]})")
        return None
    if setting is not None and setting[1]:
        debug(f"seccomp: {setting[1]} (seccomp_profile in {setting[0]})")
        return _read(setting[1], f"{setting[0]}: seccomp_profile {setting[1]}")
    for path in paths:
        if os.path.exists(path):
            debug(f"seccomp: the default profile {path}")
            return _read(path, f"the default seccomp profile {path}", "(--security-opt seccomp=unconfined runs "
                         "without one)")
    debug(f"seccomp: no default profile ({' or '.join(paths)}): the container runs without one")
    return None


def for_container(profile: dict | None, caps: list[str]) -> dict | None:
    """linux.seccomp from a profile of either format, for this host and the container's
    bounding capabilities."""
    if profile is None:
        return None
    if not is_containers_format(profile):
        return profile
    uname = os.uname()
    return convert(profile, caps, native_arch(uname.machine), uname.release)
