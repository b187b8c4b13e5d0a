#!/usr/bin/env python3
"""Benchmark (not a test): `rootless run` (or exec) against Debian's `runc run`, side by side.

Both runtimes run /bin/true from one identical rootless bundle (`runc spec --rootless`: the
caller mapped to root, a busybox rootfs), alternating, N times each, as an unprivileged user.
Prints the median wall time per container for each and the ratio rootless/runc.

  sudo tests/bench/run_vs_runc.py [-n 100]        (as root: runs as the test user)
  sudo tests/bench/run_vs_runc.py --exec          (`exec ID /bin/true` into a running container)
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
    parser.add_argument("-n", type=int, default=100, help="samples per runtime")
    parser.add_argument("--exec", action="store_true", dest="exec_",
                        help="time `exec ID /bin/true` into one running container per runtime instead")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)  # this benchmark is about rootless containers
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        rootfs = build_rootfs(directory)
        bundle = write_bundle(os.path.join(directory, "bundle"), rootfs,
                              ["sleep", "600"] if options.exec_ else ["/bin/true"])
        runtimes = {"rootless": [options.rootless_bin, "--root", os.path.join(directory, "state-rootless")],
                    "runc": ["runc", "--root", os.path.join(directory, "state-runc")]}
        if options.exec_:
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
            for i in range(options.n):
                for name in (("rootless", "runc") if i % 2 == 0 else ("runc", "rootless")):
                    samples[name].append(time_one(commands[name](i), bundle))
        finally:
            if options.exec_:
                for argv in runtimes.values():
                    subprocess.run(argv + ["delete", "--force", "target"])
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    what = "exec" if options.exec_ else "run"
    for name, value in medians.items():
        spread = statistics.quantiles([v * 1000 for v in samples[name]], n=10)
        print(f"{name:9} {what} median {value:6.1f} ms   p10 {spread[0]:6.1f} ms   p90 {spread[-1]:6.1f} ms   (n={options.n})")
    print(f"ratio rootless/runc: {medians['rootless'] / medians['runc']:.2f}")


if __name__ == "__main__":
    main()
