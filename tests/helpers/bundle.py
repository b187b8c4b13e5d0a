"""OCI bundles for the tests: config.json as `runc spec` (or `runc spec --rootless`) makes it,
with overrides, next to a shared read-only rootfs.

This template is deliberately not rootless.oci.specgen (what `rootless spec` writes): the tests
feed the runtime configs from an independent source, checked against runc's own output in
test_harness.py, rather than its own."""

import copy
import json
import os
from pathlib import Path
from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def deep_merge(base: dict, overrides: dict) -> dict:
    """Merge `overrides` into `base` in place: dicts merge key by key, anything else (lists
    too) replaces, and None removes the key."""
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def make_config(args: list[str], *, rootless: bool, terminal: bool = False, **overrides: Any) -> dict:
    """config.json as a dict, like `runc spec [--rootless]` with `args` as the process.

    The rootless config has a user namespace but no uidMappings/gidMappings: rootless maps the
    caller and its subordinate ranges itself. Keyword overrides deep-merge (see deep_merge):
    make_config(["id"], rootless=True, hostname="x", process={"cwd": "/tmp"}).
    """
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts.append("gid=5")
    if rootless:  # as `runc spec --rootless`: mounting sysfs needs a network namespace the user owns
        sysfs = {"destination": "/sys", "type": "none", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    else:
        sysfs = {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    namespaces = ["pid", "ipc", "uts", "mount", "network"] + (["user"] if rootless else [])
    config = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {kind: list(DEFAULT_CAPS) for kind in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "rootless",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            sysfs,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": kind} for kind in namespaces],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    return deep_merge(config, overrides)


def make_bundle(tmp_dir: Path, config: dict, rootfs: Path) -> Path:
    """Write `config` as tmp_dir/config.json (tmp_dir is the bundle, made if missing) with
    root.path set to the absolute path of the shared `rootfs`. config.json is 0644 and
    belongs to the bundle folder's owner (the test user, when the fixture made the folder)."""
    bundle = Path(tmp_dir)
    bundle.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(config)
    config.setdefault("root", {})["path"] = str(Path(rootfs).absolute())
    path = bundle / "config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    os.chmod(path, 0o644)
    if os.geteuid() == 0:
        owner = bundle.stat()
        os.chown(path, owner.st_uid, owner.st_gid)
    return bundle
