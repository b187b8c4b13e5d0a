"""`features`: what this build really does, per the spec's features schema. Anything not yet
implemented is reported as absent, never as enabled."""

import json

import prctl

from rootless import OCI_VERSION, __version__, mounts, namespaces, seccomp


def features() -> dict:
    options = sorted(set(mounts.FLAG_OPTIONS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE_OPTIONS))
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(namespaces.FLAGS),
            "capabilities": sorted("CAP_" + name.upper() for name in prctl.ALL_CAP_NAMES
                                   if not name.startswith("unknown")),
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": True, "actions": sorted(seccomp.ACTIONS), "operators": sorted(seccomp.OPERATORS),
                        "archs": sorted(seccomp.ARCHITECTURES), "knownFlags": sorted(seccomp.FLAGS),
                        # Debian 12's libseccomp (2.5.4) predates WAIT_KILLABLE_RECV.
                        "supportedFlags": sorted(f for f in seccomp.FLAGS if not f.endswith("WAIT_KILLABLE_RECV"))},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": False},
        },
        "annotations": {"io.github.rootless.version": __version__},
    }


def run(ctx, parsed) -> int:
    print(json.dumps(features(), indent=2))
    return 0
