#!/usr/bin/env python3
"""Benchmark (not a test): `rootless run` against Debian's `runc run`, side by side.

Both runtimes run /bin/true from one identical rootless bundle (`runc spec --rootless`: the
caller mapped to root, a busybox rootfs), alternating, N times each, as an unprivileged user.
Prints the median wall time per container for each and the ratio rootless/runc.

  sudo tests/bench/run_vs_runc.py [-n 100]        (as root: runs as the test user)
  tests/bench/run_vs_runc.py [-n 100]             (as an unprivileged user)
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import add_common_options, build_rootfs, reexec_as_user, write_bundle

HERE = os.path.dirname(os.path.abspath(__file__))


def time_one(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="containers per runtime")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)  # this benchmark is about rootless containers
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        bundle = write_bundle(os.path.join(directory, "bundle"), build_rootfs(directory), ["/bin/true"])
        roots = {name: os.path.join(directory, f"state-{name}") for name in ("rootless", "runc")}
        commands = {
            "rootless": lambda i: [options.rootless_bin, "--root", roots["rootless"], "run", f"b{i}"],
            "runc": lambda i: ["runc", "--root", roots["runc"], "run", f"b{i}"],
        }
        for name in commands:  # warm caches, and fail early if either cannot run the bundle
            time_one(commands[name](-1), bundle)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(options.n):
            for name in (("rootless", "runc") if i % 2 == 0 else ("runc", "rootless")):
                samples[name].append(time_one(commands[name](i), bundle))
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    for name, value in medians.items():
        spread = statistics.quantiles([v * 1000 for v in samples[name]], n=10)
        print(f"{name:9} median {value:6.1f} ms   p10 {spread[0]:6.1f} ms   p90 {spread[-1]:6.1f} ms   (n={options.n})")
    print(f"ratio rootless/runc: {medians['rootless'] / medians['runc']:.2f}")


if __name__ == "__main__":
    main()
