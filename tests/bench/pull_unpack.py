#!/usr/bin/env python3
"""Pull and unpack an image of several layers from a local registry: `rlx pull` + `rlx bundle`
beside `skopeo copy` + `umoci unpack --rootless` (the same work: fetch, verify, unpack, a
runnable bundle), time and disk used, as the unprivileged test user.

    python3 tests/bench/pull_unpack.py [--layers 5] [--layer-mb 16] [--runs 3]

The image is made here (busybox plus layers of generated files) and served by Debian's
docker-registry on 127.0.0.1; nothing comes from the internet.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_common_options, reexec_as_user  # noqa: E402
from helpers.images import LocalRegistry, member, rootfs_layer, tar_layer, write_oci_layout  # noqa: E402
from helpers.rootfs import build_busybox_rootfs  # noqa: E402


def make_layers(work: Path, count: int, layer_mb: int) -> list[bytes]:
    rng = random.Random(42)
    layers = [rootfs_layer(build_busybox_rootfs(work / "busybox"))]
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz ", k=8)) for _ in range(512)]
    for n in range(count - 1):
        files, size = [member(f"data{n}", b"5")], 0
        i = 0
        while size < layer_mb << 20:
            # half text (compresses like code), half random (like binaries)
            data = b"".join(rng.choices(words, k=2048)) + rng.randbytes(16384)
            files.append(member(f"data{n}/f{i:05d}", data=data, uid=rng.choice([0, 33, 1000]), gid=0))
            size += len(data)
            i += 1
        layers.append(tar_layer(files))
    return layers


def disk_kib(*paths: Path) -> int:
    seen, total = set(), 0
    for path in paths:
        for folder, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                try:
                    st = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks // 2
    return total


def timed(argv: list[str], env: dict) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mb", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reexec_as_user(args.user, __file__)
    rlx = os.path.join(os.path.dirname(args.rootless_bin), "rlx")
    work = Path(tempfile.mkdtemp(prefix="bench-pull-", dir="/var/tmp"))
    env = dict(os.environ, HOME=str(work / "home"), XDG_CONFIG_HOME=str(work / "home/.config"))
    registry = None
    try:
        layers = make_layers(work, args.layers, args.layer_mb)
        write_oci_layout(work / "layout", layers, {"config": {"Cmd": ["/bin/sh"]}})
        registry = LocalRegistry(work / "registry")
        registry.push(f"oci:{work / 'layout'}:latest", "bench:1")
        (work / "home/.config/containers").mkdir(parents=True)
        (work / "home/.config/containers/registries.conf").write_text(
            f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
        ref = f"{registry.host}/bench:1"
        results = {"rlx": [], "skopeo+umoci": []}
        pulls = []
        disk = {}
        for run in range(args.runs):
            store, bundle = work / f"store{run}", work / f"bundle{run}"
            t = timed([rlx, "--store", str(store), "pull", "-q", ref], env)
            pulled = t
            pulls.append(t)
            t += timed([rlx, "--store", str(store), "bundle", ref, str(bundle)], env)
            print(f"  run {run}: rlx pull {pulled:.2f} s, bundle {t - pulled:.2f} s", file=sys.stderr)
            results["rlx"].append(t)
            disk["rlx"] = disk_kib(store, bundle)
            subprocess.run([rlx, "--store", str(store), "rmi", "--all"], env=env, stdout=subprocess.DEVNULL, check=True)
            shutil.rmtree(bundle, ignore_errors=True)
            oci, unpacked = work / f"oci{run}", work / f"umoci{run}"
            t = timed(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
                       f"oci:{oci}:bench"], env)
            t += timed(["umoci", "unpack", "--rootless", "--image", f"{oci}:bench", str(unpacked)], env)
            results["skopeo+umoci"].append(t)
            disk["skopeo+umoci"] = disk_kib(oci, unpacked)
            shutil.rmtree(oci, ignore_errors=True)
            shutil.rmtree(unpacked, ignore_errors=True)
        total_mb = sum(len(layer) for layer in layers) / 1e6
        print(f"image: {args.layers} layers, {total_mb:.0f} MB uncompressed; median of {args.runs} runs")
        for name, times in results.items():
            print(f"  {name:<14} {statistics.median(times):6.2f} s   disk {disk[name] / 1024:7.1f} MiB   "
                  f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
        ratio = statistics.median(results["rlx"]) / statistics.median(results["skopeo+umoci"])
        print(f"  time ratio rlx pull+bundle / (skopeo+umoci): {ratio:.2f}; disk ratio: "
              f"{disk['rlx'] / disk['skopeo+umoci']:.2f}")
        print(f"  rlx pull alone (fetch, verify, unpack into the store): {statistics.median(pulls):.2f} s, ratio "
              f"{statistics.median(pulls) / statistics.median(results['skopeo+umoci']):.2f}")
    finally:
        if registry:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
