#!/usr/bin/env python3
"""Benchmark (not a test): `rootless run` (or exec) against Debian's `runc run`, side by side.

Both runtimes run /bin/true from one identical rootless bundle (`runc spec --rootless`, a
busybox rootfs), alternating, N times each, as an unprivileged user. Four bundle kinds, as
podman's containers differ from a bare runc bundle:

  single          the caller mapped to root, one ID (runc's template)
  subids          the caller plus its /etc/subuid and /etc/subgid ranges (newuidmap, newgidmap)
  single+seccomp  single, with podman's default seccomp profile (as podman writes it)
  subids+seccomp  subids, with the same profile

Prints the median wall time per container for each runtime and kind, and the ratio
rootless/runc.

  sudo tests/bench/run_vs_runc.py [-n 100] [--kinds single,subids]   (as root: runs as the test user)
  sudo tests/bench/run_vs_runc.py --exec          (`exec ID /bin/true` into a running container)
  tests/bench/run_vs_runc.py [-n 100]             (as an unprivileged user)
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

from common import (Podman, add_common_options, build_rootfs, load_average, reexec_as_user, rotation, runtime_commands,
                    subordinate_mappings, time_one, write_bundle)

KINDS = ("single", "subids", "single+seccomp", "subids+seccomp")


def make_bundle(directory: str, rootfs: str, kind: str, args: list[str], seccomp: dict | None) -> str:
    bundle = write_bundle(os.path.join(directory, f"bundle-{kind}"), rootfs, args)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    if kind.startswith("subids"):
        config["linux"]["uidMappings"] = subordinate_mappings("/etc/subuid")
        config["linux"]["gidMappings"] = subordinate_mappings("/etc/subgid")
    if kind.endswith("+seccomp"):
        config["linux"]["seccomp"] = seccomp
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return bundle


def measure(runtimes: dict, bundle: str, n: int, exec_: bool) -> dict[str, list[float]]:
    if exec_:
        for argv in runtimes.values():
            # The container keeps its stdio: no pipe that would wait for it.
            subprocess.run(argv + ["run", "-d", "target"], cwd=bundle, check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        commands = {name: (lambda i, argv=argv: argv + ["exec", "target", "/bin/true"])
                    for name, argv in runtimes.items()}
    else:
        commands = {name: (lambda i, argv=argv: argv + ["run", f"b{i}"]) for name, argv in runtimes.items()}
    try:
        for name in commands:  # warm caches, and fail early if either cannot run the bundle
            time_one(commands[name](-1), bundle)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(n):
            for name in rotation(list(commands), i):
                samples[name].append(time_one(commands[name](i), bundle))
    finally:
        if exec_:
            for argv in runtimes.values():
                subprocess.run(argv + ["delete", "--force", "target"])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="samples per runtime and kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--exec", action="store_true", dest="exec_",
                        help="time `exec ID /bin/true` into one running container per runtime instead")
    add_common_options(parser)
    options = parser.parse_args()
    kinds = options.kinds.split(",")
    if not set(kinds) <= set(KINDS):
        parser.error(f"--kinds: choose from {', '.join(KINDS)}")
    reexec_as_user(options.user, __file__)  # this benchmark is about rootless containers
    what = "exec" if options.exec_ else "run"
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        rootfs = build_rootfs(directory)
        seccomp = None
        if any(kind.endswith("+seccomp") for kind in kinds):
            os.makedirs(os.path.join(directory, "podman"))
            podman = Podman(os.path.join(directory, "podman"), rootfs)
            try:
                seccomp = podman.default_seccomp()
            finally:
                podman.close()
        args = ["sleep", "600"] if options.exec_ else ["/bin/true"]
        for kind in kinds:
            bundle = make_bundle(directory, rootfs, kind, args, seccomp)
            runtimes = runtime_commands(options.rootless_bin, directory, kind, options.before)
            samples = measure(runtimes, bundle, options.n, options.exec_)
            medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
            for name, value in medians.items():
                spread = statistics.quantiles([v * 1000 for v in samples[name]], n=10)
                print(f"{kind:15} {name:9} {what} median {value:6.1f} ms   p10 {spread[0]:6.1f} ms   "
                      f"p90 {spread[-1]:6.1f} ms   (n={options.n})")
            print(f"{kind:15} ratio rootless/runc: {medians['rootless'] / medians['runc']:.2f}"
                  + (f"   before/runc: {medians['before'] / medians['runc']:.2f}" if "before" in medians else "")
                  + f"   ({load_average()})", flush=True)


if __name__ == "__main__":
    main()
