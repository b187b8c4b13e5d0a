#!/usr/bin/env python3
"""Benchmark (not a test): the schema check on every `create`, ours against fastjsonschema's.

Each measurement is a fresh interpreter (as a runtime call is) that imports the validator and
validates a podman-like config.json with a seccomp profile of 300 rules (podman's default
profile, one rule per name). Prints the median import and validation times.

  VENV/bin/python tests/bench/schema_validation.py [-n 15]

with the venv rootless is installed in (tests/run makes one); fastjsonschema is measured when
that interpreter can import it.

Measured on the project's machine (November 2026; medians, the low ends quiet, the high ends
under a load of 6 on its 2 cores): ours 1.0-2.1 ms import + 2.4-7.9 ms validation (3.3-10 ms
in all); fastjsonschema 2.22.3's generated module (detailed_exceptions off, its exception
classes defined in the module) 11-36 ms import (`re`, `decimal` and a 260 KB .pyc) + 1.1-1.4
ms validation (14-38 ms in all). So the hand-written validator stays.
"""

import argparse
import json
import os
import py_compile
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = "/usr/share/containers/seccomp.json"

# The installed rootless (its .pyc files made at install, as a runtime call finds them); this
# checkout's only when none is installed.
MEASURE = """
import sys, time
sys.path[:0] = [{folder!r}]
import importlib.util
if importlib.util.find_spec("rootless") is None:
    sys.path.insert(0, {root!r})
from rootless import jsonlite
with open({config!r}, "rb") as f:
    doc = jsonlite.loads(f.read())
t0 = time.perf_counter()
if {which!r} == "ours":
    from rootless.oci.schema import check_config as check
else:
    from generated import validate as check
t1 = time.perf_counter()
check(doc)
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def podman_like_config(rules: int = 300) -> dict:
    syscalls = []
    if os.path.exists(PROFILE):
        with open(PROFILE) as f:
            for group in json.load(f)["syscalls"]:
                for name in group["names"]:
                    syscalls.append({"names": [name], "action": group["action"],
                                     **({"args": group["args"]} if group.get("args") else {})})
    while len(syscalls) < rules:
        syscalls.append({"names": [f"call{len(syscalls)}"], "action": "SCMP_ACT_ALLOW"})
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
            "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {"user": {"uid": 0, "gid": 0, "additionalGids": [0, 1, 2]}, "args": ["sh"], "cwd": "/",
                    "env": ["PATH=/usr/bin:/bin", "TERM=xterm", "container=podman"],
                    "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}], "oomScoreAdj": 0},
        "root": {"path": "/var/lib/containers/storage/overlay/x/merged"}, "hostname": "abc",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec"]},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                   {"destination": "/etc/hosts", "type": "bind", "source": "/run/x/hosts", "options": ["bind", "rprivate"]}],
        "annotations": {"io.container.manager": "libpod", "org.opencontainers.image.stopSignal": "15"},
        "linux": {"sysctl": {"net.ipv4.ping_group_range": "0 0"}, "resources": {"pids": {"limit": 2048}},
                  "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
                  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": syscalls[:rules]},
                  "maskedPaths": ["/proc/acpi", "/proc/kcore"], "readonlyPaths": ["/proc/bus", "/proc/sys"]},
    }


def generate(folder: str) -> bool:
    """fastjsonschema's module for our bundle, as a build step would make it; False without it."""
    try:
        import fastjsonschema
    except ImportError:
        return False
    with open(os.path.join(ROOT, "rootless", "oci", "schema", "config.bundle.json")) as f:
        schema = {**json.load(f)["schema"], "$schema": "http://json-schema.org/draft-04/schema#"}
    code = fastjsonschema.compile_to_code(schema, detailed_exceptions=False)
    # The generated module imports its exceptions from the fastjsonschema package (about 40 ms
    # more: json, urllib, ...); a build step would define them in the module instead.
    lines = [line for line in code.splitlines() if not line.startswith("from fastjsonschema import ")]
    code = "\n".join(lines) + (
        "\nclass JsonSchemaValueException(ValueError):\n"
        "    def __init__(self, message, **fields):\n"
        "        super().__init__(message)\n"
        "class JsonSchemaValuesException(ValueError):\n"
        "    pass\n")
    path = os.path.join(folder, "generated.py")
    with open(path, "w") as f:
        f.write(code)
    py_compile.compile(path)  # as an installed package would have it
    return True


def measure(which: str, folder: str, config: str, runs: int) -> tuple[float, float]:
    code = MEASURE.format(root=ROOT, folder=folder, config=config, which=which)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    samples = [tuple(map(float, subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                               text=True, env=env).stdout.split())) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="fresh interpreters per validator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = os.path.join(folder, "config.json")
        with open(config, "w") as f:
            json.dump(podman_like_config(), f)
        subjects = ["ours"] + (["fastjsonschema"] if generate(folder) else [])
        for which in subjects:
            imported, validated = measure(which, folder, config, args.n)
            print(f"{which:15} import {imported:6.2f} ms  validate {validated:6.2f} ms  "
                  f"total {imported + validated:6.2f} ms")
        if len(subjects) == 1:
            print("fastjsonschema is not installed: pip install fastjsonschema to compare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
