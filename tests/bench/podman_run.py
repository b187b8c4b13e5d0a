#!/usr/bin/env python3
"""Benchmark (not a test): `podman run --rm --network none IMAGE true` with `--runtime rootless`
against `--runtime runc`, side by side, as an unprivileged user, with the time of each runtime
call podman (and conmon) makes.

Two passes over one image imported from a busybox rootfs (no registry):
  1. the whole `podman run`, alternating runtimes, N times each: medians and the ratio;
  2. the same through a wrapper per runtime that records each call's verb and wall time
     (the wrapper's own cost, a few ms of bash, is paid by both): medians per verb.

  sudo tests/bench/podman_run.py [-n 30]      (as root: runs as the test user)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import Podman, add_common_options, build_rootfs, load_average, median_ms, reexec_as_user, rotation

RUNTIME_VERBS = ("create", "start", "state", "kill", "delete", "exec", "pause", "resume", "update", "events")

WRAPPER = """#!/bin/bash
start=$EPOCHREALTIME
{binary} "$@"
status=$?
printf '%s %s %s\\n' "$start" "$EPOCHREALTIME" "$*" >> {log}
exit $status
"""


def podman_run(podman: Podman, runtime: str) -> float:
    start = time.perf_counter()
    result = podman.run(["run", "--rm", "--network", "none", podman.IMAGE, "true"], runtime=runtime)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"podman run with {runtime} failed ({result.returncode}): {result.stderr.strip()}")
    return elapsed


def verb_of(args: list[str]) -> str:
    return next((arg for arg in args if arg in RUNTIME_VERBS), "other")


def make_wrapper(directory: str, name: str, binary: str) -> tuple[str, str]:
    log = os.path.join(directory, f"calls-{name}.log")
    # The basename matters: podman passes --log-format=json only to runtimes it knows by name.
    folder = os.path.join(directory, f"wrap-{name}")
    os.makedirs(folder)
    path = os.path.join(folder, os.path.basename(binary))
    with open(path, "w") as f:
        f.write(WRAPPER.format(binary=binary, log=log))
    os.chmod(path, 0o755)
    return path, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="podman runs per runtime and pass")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)
    if shutil.which("podman") is None:
        sys.exit("podman is not installed (packaging/install-deps installs it)")
    runtimes = {"rootless": options.rootless_bin, "runc": shutil.which("runc") or "/usr/sbin/runc"}
    if options.before:
        runtimes["before"] = options.before
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        rootfs = build_rootfs(directory)
        os.makedirs(os.path.join(directory, "podman"))
        podman = Podman(os.path.join(directory, "podman"), rootfs)
        try:
            for runtime in runtimes.values():  # warm caches, and fail early
                podman_run(podman, runtime)
            whole: dict[str, list[float]] = {name: [] for name in runtimes}
            for i in range(options.n):
                for name in rotation(list(runtimes), i):
                    whole[name].append(podman_run(podman, runtimes[name]))
            wrappers = {name: make_wrapper(directory, name, binary) for name, binary in runtimes.items()}
            for i in range(options.n):
                for name in rotation(list(runtimes), i):
                    podman_run(podman, wrappers[name][0])
            calls: dict[str, dict[str, list[float]]] = {name: {} for name in runtimes}
            for name, (_, log) in wrappers.items():
                with open(log) as f:
                    for line in f:
                        start, end, *args = line.split()
                        calls[name].setdefault(verb_of(args), []).append(float(end) - float(start))
        finally:
            podman.close()
    ours, theirs = median_ms(whole["rootless"]), median_ms(whole["runc"])
    print(f"podman run --rm --network none IMAGE true   rootless {ours:.1f} ms   runc {theirs:.1f} ms   "
          f"ratio {ours / theirs:.2f}   (medians, n={options.n}, {load_average()})")
    if "before" in whole:
        old = median_ms(whole["before"])
        print(f"{'':43}before   {old:.1f} ms   ratio {old / theirs:.2f}")
    print(f"{'runtime call':15} {'calls':>5} {'rootless':>10} {'runc':>10} {'ratio':>6}")
    for verb in sorted(set(calls["rootless"]) | set(calls["runc"])):
        a, b = calls["rootless"].get(verb, []), calls["runc"].get(verb, [])
        if a and b:
            line = f"{verb:15} {len(a):5} {median_ms(a):8.1f}ms {median_ms(b):8.1f}ms {median_ms(a) / median_ms(b):6.2f}"
            old = calls.get("before", {}).get(verb)
            print(line + (f"   before {median_ms(old):6.1f}ms {median_ms(old) / median_ms(b):6.2f}" if old else ""))
        else:
            print(f"{verb:15} rootless {len(a)} calls, runc {len(b)} calls")


if __name__ == "__main__":
    main()
