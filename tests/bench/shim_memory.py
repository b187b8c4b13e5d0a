#!/usr/bin/env python3
"""Benchmark (not a test): memory of the shim (rootless.shim.server) per running container.

Runs N containers (`sleep`) with `rootless run --shim` as an unprivileged user, then prints the
mean proportional set size (PSS) of their shims: with N shims running, the pages they share
(the interpreter's code) count 1/N to each. conmon, podman's shim, measured about 0.5 MiB here
the same way (10 `podman run -d` with this runtime).

  sudo tests/bench/shim_memory.py [-n 10]         (as root: runs as the test user)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import add_common_options, build_rootfs, pss_kib, reexec_as_user, write_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10, help="shim-managed containers running at once")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)
    with tempfile.TemporaryDirectory(prefix="rootless-bench-", dir="/var/tmp") as directory:
        bundle = write_bundle(os.path.join(directory, "bundle"), build_rootfs(directory), ["sleep", "600"])
        state_root = os.path.join(directory, "state")
        runtime = [options.rootless_bin, "--root", state_root]
        ids = [f"s{i}" for i in range(options.n)]
        try:
            for container_id in ids:
                subprocess.run(runtime + ["run", "--detach", "--shim", container_id], cwd=bundle, check=True)
            time.sleep(1)
            shims = []
            for container_id in ids:
                with open(os.path.join(state_root, container_id, "state.json")) as f:
                    shims.append(json.load(f)["shim"]["pid"])
            sizes = [pss_kib(pid) for pid in shims]
        finally:
            for container_id in ids:
                subprocess.run(runtime + ["delete", "--force", container_id], stderr=subprocess.DEVNULL)
    mean = sum(sizes) / len(sizes)
    print(f"shim PSS with {options.n} running: mean {mean / 1024:.2f} MiB ({mean:.0f} KiB), "
          f"min {min(sizes)} KiB, max {max(sizes)} KiB")


if __name__ == "__main__":
    sys.exit(main())
