#!/usr/bin/env python3
"""Benchmark (not a test): the short verbs podman and containerd call for every container
(`state`, `start`, `kill`, `delete`, `list`), rootless against Debian's runc, side by side.

One rootless bundle (`runc spec --rootless`, a busybox rootfs running `sleep 600`), as an
unprivileged user. Each round, for each runtime in alternating order: `create` (not timed),
then timed `state ID`, `list`, `start ID`, `state ID` of the running container, `kill ID 9`,
and `delete ID` once the init is gone. Prints the median of each verb per runtime and the
ratio rootless/runc.

  sudo tests/bench/verbs.py [-n 50]      (as root: runs as the test user)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from common import (add_common_options, build_rootfs, load_average, median_ms, reexec_as_user, rotation,
                    runtime_commands, time_one, write_bundle)

VERBS = ("state created", "list", "start", "state running", "kill", "delete")


def wait_stopped(argv: list[str], cid: str, cwd: str) -> None:
    for _ in range(500):
        result = subprocess.run(argv + ["state", cid], cwd=cwd, capture_output=True, text=True)
        if '"stopped"' in result.stdout:
            return
        time.sleep(0.01)
    sys.exit(f"{cid} did not stop after kill")


def one_round(argv: list[str], cid: str, bundle: str, samples: dict[str, list[float]]) -> None:
    subprocess.run(argv + ["create", cid], cwd=bundle, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples["state created"].append(time_one(argv + ["state", cid], bundle))
    samples["list"].append(time_one(argv + ["list"], bundle))
    samples["start"].append(time_one(argv + ["start", cid], bundle))
    samples["state running"].append(time_one(argv + ["state", cid], bundle))
    samples["kill"].append(time_one(argv + ["kill", cid, "9"], bundle))
    wait_stopped(argv, cid, bundle)
    samples["delete"].append(time_one(argv + ["delete", cid], bundle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="rounds per runtime")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        bundle = write_bundle(os.path.join(directory, "bundle"), build_rootfs(directory), ["sleep", "600"])
        runtimes = runtime_commands(options.rootless_bin, directory, before=options.before)
        samples = {name: {verb: [] for verb in VERBS} for name in runtimes}
        for name, argv in runtimes.items():  # warm caches, and fail early
            one_round(argv, "warm", bundle, {verb: [] for verb in VERBS})
        for i in range(options.n):
            for name in rotation(list(runtimes), i):
                one_round(runtimes[name], f"c{i}", bundle, samples[name])
    before = "before" in runtimes
    print(f"{'verb':15} {'rootless':>10} {'runc':>10} {'ratio':>6}" + (f" {'before':>10} {'ratio':>6}" if before else "")
          + f"   (medians, n={options.n}, {load_average()})")
    for verb in VERBS:
        ours, theirs = median_ms(samples["rootless"][verb]), median_ms(samples["runc"][verb])
        line = f"{verb:15} {ours:8.1f}ms {theirs:8.1f}ms {ours / theirs:6.2f}"
        if before:
            old = median_ms(samples["before"][verb])
            line += f" {old:8.1f}ms {old / theirs:6.2f}"
        print(line)


if __name__ == "__main__":
    main()
