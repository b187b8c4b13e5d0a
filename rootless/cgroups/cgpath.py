"""Where a container's cgroup goes: config.json's cgroupsPath read as runc reads it. Pure.

- systemd driver: `slice:prefix:name` (podman sends `user.slice:libpod:ID`, CRI-O
  `system.slice:crio:ID`). The unit is `prefix-name.scope`; an empty slice means runc's
  default, `user.slice` for a rootless caller and `system.slice` for root; an empty
  cgroupsPath means `DEFAULT_SLICE:runc:ID`.
- cgroupfs driver: an absolute cgroupsPath is taken from the cgroup2 mount point; a relative
  one (and an empty one, which means the container's id) from the caller's own cgroup, or its
  parent when that is a `.scope` (the caller's scope already holds processes, and cgroup v2
  forbids children with controllers below a cgroup that has processes of its own).
"""

import posixpath

from rootless.errors import ConfigError

SCOPE_PREFIX = "runc"


def systemd_unit(cgroups_path: str, container_id: str, rootless: bool) -> tuple[str, str]:
    """(slice, unit name) for the systemd driver."""
    default_slice = "user.slice" if rootless else "system.slice"
    if not cgroups_path:
        return default_slice, f"{SCOPE_PREFIX}-{container_id}.scope"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise ConfigError(f'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
                          f'got "{cgroups_path}" instead')
    slice_, prefix, name = parts
    if not name:
        raise ConfigError(f"cgroupsPath {cgroups_path!r}: the name (after the second colon) is empty")
    if name.endswith(".slice"):
        raise ConfigError(f"cgroupsPath {cgroups_path!r}: a container in a slice of its own is not supported; "
                          "give a scope name (slice:prefix:name)")
    if slice_ and (not slice_.endswith(".slice") or "/" in slice_):
        raise ConfigError(f"cgroupsPath {cgroups_path!r}: {slice_!r} is not a slice name (NAME.slice)")
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return slice_ or default_slice, unit


def expand_slice(slice_: str) -> str:
    """systemd's slice path: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`."""
    if slice_ == "-.slice":
        return "/"
    stem = slice_[:-len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise ConfigError(f"invalid slice name {slice_!r}")
    path, prefix = "", ""
    for component in stem.split("-"):
        prefix = f"{prefix}-{component}" if prefix else component
        path += f"/{prefix}.slice"
    return path


def own_cgroup(proc_self_cgroup: str) -> str | None:
    """The unified hierarchy's line of /proc/self/cgroup ("0::/PATH"), or None."""
    for line in proc_self_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def cgroupfs_path(cgroups_path: str, container_id: str, own: str) -> str:
    """The container's cgroup, relative to the cgroup2 mount point (always starting with /)."""
    inner = cgroups_path or container_id
    if inner.startswith("/"):
        result = posixpath.normpath(inner)
    else:
        base = posixpath.dirname(own) if own.endswith(".scope") else own
        result = posixpath.normpath(posixpath.join("/", base, posixpath.normpath("/" + inner).lstrip("/")))
    result = "/" + result.lstrip("/")
    if result == "/":
        raise ConfigError(f"cgroupsPath {cgroups_path!r} names the root cgroup: give the container a cgroup of its own")
    return result
