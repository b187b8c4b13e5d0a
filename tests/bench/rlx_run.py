#!/usr/bin/env python3
"""Benchmark (not a test): `rlx run --rm --network none IMAGE true` against
`podman --runtime runc run --rm --network none IMAGE true`, side by side (alternating), as an
unprivileged user, of the same image imported from a busybox rootfs (no registry): medians
and the ratio rlx/podman (issue 16: at most 0.5, the aim 0.33).

podman uses its rootless default storage, overlay (native in a user namespace here), so
neither side copies the image per container.

  sudo tests/bench/rlx_run.py [-n 20]      (as root: runs as the test user)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from common import Podman, add_common_options, build_rootfs, median_ms, reexec_as_user, time_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="runs of each")
    parser.add_argument("--rlx-bin", default=shutil.which("rlx") or os.path.join(os.path.dirname(sys.executable), "rlx"))
    parser.add_argument("--userns", help="keep-id: both sides run with it (the warm-up run makes rlx's chowned "
                        "copy of the layers, podman's own chowned layer)")
    parser.add_argument("--podman-driver", default="overlay", help="podman's storage driver (overlay or vfs)")
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)
    if shutil.which("podman") is None:
        sys.exit("podman is not installed (packaging/install-deps installs it)")
    runc = shutil.which("runc") or "/usr/sbin/runc"
    with tempfile.TemporaryDirectory(prefix="rlx-bench-", dir="/var/tmp") as directory:
        rootfs = build_rootfs(directory)
        os.makedirs(os.path.join(directory, "podman"))
        podman = Podman(os.path.join(directory, "podman"), rootfs, driver=options.podman_driver)
        store = os.path.join(directory, "rlx-store")
        rlx = [options.rlx_bin, "--store", store]
        try:
            subprocess.run(rlx + ["load", os.path.join(directory, "podman", "rootfs.tar"), "--name", podman.IMAGE],
                           check=True, stdout=subprocess.DEVNULL)
            userns = ["--userns", options.userns] if options.userns else []
            commands = {
                "rlx": rlx + ["run", "--rm", "--network", "none", *userns, podman.IMAGE, "true"],
                "podman": podman.base + ["--runtime", runc, "run", "--rm", "--network", "none", *userns, podman.IMAGE,
                                         "true"],
            }
            for argv in commands.values():  # warm caches, and fail early
                time_one(argv, directory)
            times: dict[str, list[float]] = {name: [] for name in commands}
            for i in range(options.n):
                for name in (("rlx", "podman") if i % 2 == 0 else ("podman", "rlx")):
                    times[name].append(time_one(commands[name], directory))
            left = os.listdir(os.path.join(store, "containers")) if os.path.isdir(os.path.join(store, "containers")) else []
        finally:
            podman.close()
            subprocess.run(["podman", "unshare", "rm", "-rf", store], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rlx_ms, podman_ms = median_ms(times["rlx"]), median_ms(times["podman"])
    print(f"runs: {options.n} each, alternating; podman storage: {options.podman_driver}"
          + (f"; --userns {options.userns}" if options.userns else ""))
    print(f"rlx run --rm --network none IMAGE true:                    median {rlx_ms:7.1f} ms")
    print(f"podman --runtime runc run --rm --network none IMAGE true:  median {podman_ms:7.1f} ms")
    print(f"ratio rlx/podman: {rlx_ms / podman_ms:.2f} (issue 16: at most 0.5, aim 0.33)")
    if [name for name in left if not name.startswith(".")]:
        print(f"rlx left containers behind: {left}")
        sys.exit(1)


if __name__ == "__main__":
    main()
