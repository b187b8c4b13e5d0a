"""The config.json templates: `default_spec`, the base of image bundles (rootless.images), and
`runc_template`, what `rootless spec` writes: current runc's template, key order included.

The rootless variant maps container root to the caller, one ID, as `runc spec --rootless`
does (clients append their subordinate ranges to that list). Where runc 1.1.5 and current runc
differ (ambient capabilities, /sys/devices/virtual/tpm), this follows current runc; what still
differs from runc is listed, with the reason, in docs/differences-from-runc.md ("Process").
"""

import os

from rootless import OCI_VERSION

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                "/sys/devices/virtual/tpm"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(rootless: bool, args: list[str] | None = None, terminal: bool = True) -> dict:
    devpts_options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts_options.append("gid=5")
    sysfs = ({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
             if rootless else
             {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]})
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]
    if rootless:
        namespaces.append({"type": "user"})
    linux = {}
    if rootless:
        # runc's key order: the maps come first in its linux object.
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    linux.update(namespaces=namespaces, maskedPaths=list(MASKED_PATHS), readonlyPaths=list(READONLY_PATHS))
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "rootless",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts_options},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            sysfs,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": linux,
    }


def runc_template(rootless: bool, cgroup_v2: bool) -> dict:
    """runc's template (libcontainer/specconv: Example, then ToRootless for --rootless): hostname
    runc, a cgroup namespace on a cgroup v2 host only, a deny-all device rule for root; the
    rootless variant shares the host's network and has no resources."""
    spec = default_spec(rootless)
    spec["hostname"] = "runc"
    linux = spec["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"]
                           if not (ns["type"] == "cgroup" and not cgroup_v2)
                           and not (ns["type"] == "network" and rootless)]
    if not rootless:
        spec["linux"] = {"resources": {"devices": [{"allow": False, "access": "rwm"}]}, **linux}
    return spec
