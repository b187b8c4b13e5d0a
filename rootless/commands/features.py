"""`features`: what this build really does, per the spec's features schema. Anything not yet
implemented is reported as absent, never as enabled."""

import json
import os

from rootless import OCI_VERSION, __version__
from rootless.process import hooks, attrs, become, seccomp
from rootless.oci import mounts, namespaces


def features() -> dict:
    archs, flags = seccomp.supported()  # what this libseccomp and kernel accept
    options = sorted(set(mounts.FLAG_OPTIONS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE_OPTIONS)
                     | set(mounts.EXTENSION_OPTIONS))
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(hooks.KINDS),
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(namespaces.FLAGS),
            "capabilities": sorted(become.CAPABILITIES),
            "cgroup": _cgroup(),
            "seccomp": {"enabled": True, "actions": sorted(seccomp.ACTIONS), "operators": sorted(seccomp.OPERATORS),
                        "archs": sorted(archs), "knownFlags": sorted(seccomp.FLAGS), "supportedFlags": sorted(flags)},
            "apparmor": {"enabled": attrs.apparmor_enabled()},
            "selinux": {"enabled": attrs.selinux_enabled()},
            "intelRdt": {"enabled": False},
            # mount_setattr(MOUNT_ATTR_IDMAP) came in Linux 5.12; rootless containers can idmap
            # only filesystems mounted in their user namespace.
            "mountExtensions": {"idmap": {"enabled": _kernel_at_least(5, 12)}},
            "netDevices": {"enabled": False},
        },
        "annotations": {"io.github.rootless.version": __version__},
        # Annotations that change what the runtime does to the host (a value ending in "." is a
        # prefix): systemd properties of the container's unit, and the network helper's.
        "potentiallyUnsafeConfigAnnotations": ["org.systemd.property.", "rootless.dns", "rootless.network",
                                               "rootless.ports"],
    }


def _cgroup() -> dict:
    """What this host offers, not what the code could do: cgroup v2 only where it is the
    whole hierarchy (v1 is never written), systemd where its bus answers."""
    from rootless.cgroups import host
    v2 = host.unified()
    return {"v1": False, "v2": v2,
            "systemd": v2 and os.path.exists(host.SYSTEM_BUS.partition("=")[2]),
            "systemdUser": v2 and host.bus_address(False, os.environ) is not None,
            "rdma": v2 and "rdma" in host.controllers(host.MOUNT)}


def _kernel_at_least(major: int, minor: int) -> bool:
    numbers = os.uname().release.split("-")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) >= (major, minor)
    except (IndexError, ValueError):
        return False


def run(ctx, parsed) -> int:
    print(json.dumps(features(), indent=2))
    return 0
