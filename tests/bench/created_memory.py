#!/usr/bin/env python3
"""Benchmark (not a test): memory of a created container's waiting init, rootless against
Debian's runc, side by side.

Both runtimes create N containers each from one identical rootless bundle (`runc spec
--rootless`, a busybox rootfs, `sleep` as the process), as an unprivileged user, and leave
them created. Prints the mean proportional set size (PSS) of the waiting inits per runtime,
then deletes everything.

  sudo tests/bench/created_memory.py [-n 10]      (as root: runs as the test user)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from common import add_common_options, build_rootfs, pss_kib, reexec_as_user, runtime_commands, write_bundle


def created_pids(argv: list[str], ids: list[str], bundle: str) -> list[int]:
    pids = []
    for container_id in ids:
        pid_file = os.path.join(bundle, f"{container_id}.pid")
        subprocess.run(argv + ["create", "--pid-file", pid_file, container_id], cwd=bundle, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with open(pid_file) as f:
            pids.append(int(f.read()))
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10, help="created containers per runtime")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        bundle = write_bundle(os.path.join(directory, "bundle"), build_rootfs(directory), ["sleep", "600"])
        runtimes = runtime_commands(options.rootless_bin, directory)
        ids = [f"m{i}" for i in range(options.n)]
        pids = {}
        try:
            for name, argv in runtimes.items():
                pids[name] = created_pids(argv, ids, bundle)
            time.sleep(0.5)  # each init is past its last setup step and blocked on exec.fifo
            means = {name: sum(map(pss_kib, pids[name])) / len(pids[name]) for name in pids}
        finally:
            for argv in runtimes.values():
                for container_id in ids:
                    subprocess.run(argv + ["delete", "--force", container_id], stderr=subprocess.DEVNULL)
    for name, kib in means.items():
        print(f"{name:9} waiting init PSS {kib / 1024:6.2f} MiB   ({kib:.0f} KiB, mean of {options.n})")
    print(f"ratio rootless/runc: {means['rootless'] / means['runc']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
