#!/usr/bin/env python3
"""Benchmark (not a test): bulk TCP throughput through a published port, for pasta and
slirp4netns attached by rootless, against the same helper started by hand.

A busybox container runs `nc -l -p 5000 > /dev/null` in a loop; the host sends SIZE MiB to
127.0.0.1:PORT and waits for the container to close the connection. "rootless" publishes the
port with rootless.network/rootless.ports; "by hand" creates the container with
rootless.network=none and attaches the helper with its plain documented command line
(pasta -t PORT:5000, slirp4netns --configure --mtu=65520 + add_hostfwd). Prints the median
MB/s of R rounds for each and the ratio.

  sudo tests/bench/network_throughput.py [-s 256] [-r 5]   (as root: runs as the test user)
  tests/bench/network_throughput.py [-s 256] [-r 5]        (as an unprivileged user)
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

from common import add_common_options, build_rootfs, reexec_as_user, write_bundle

SERVER = "while true; do nc -l -p 5000 > /dev/null; done"


def build_bundle(directory: str, annotations: dict) -> str:
    bundle = os.path.join(directory, "bundle-" + str(len(os.listdir(directory))))
    return write_bundle(bundle, build_rootfs(directory), ["sh", "-c", SERVER], annotations, network=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send(port: int, size: int) -> float:
    """MB/s of one bulk transfer of `size` bytes, retried until the server listens."""
    chunk = b"\0" * (1 << 20)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                start = time.perf_counter()
                for _ in range(size // len(chunk)):
                    conn.sendall(chunk)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
                return size / (time.perf_counter() - start) / 1e6
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def slirp_api(path: str, request: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(socket.SHUT_WR)
        return json.loads(sock.recv(65536))


def by_hand(helper: str, pid: int, port: int, directory: str) -> subprocess.Popen | int:
    if helper == "pasta":
        pid_file = os.path.join(directory, "hand-pasta.pid")
        subprocess.run(["pasta", "--config-net", "--quiet", "--netns", f"/proc/{pid}/ns/net", "--userns",
                        f"/proc/{pid}/ns/user", "-P", pid_file, "-t", f"{port}:5000"], check=True,
                       stderr=subprocess.DEVNULL)
        with open(pid_file) as f:
            return int(f.read())
    sock = os.path.join(directory, "hand-slirp.sock")
    ready_r, ready_w = os.pipe()
    proc = subprocess.Popen(["slirp4netns", "--configure", "--mtu=65520", f"--ready-fd={ready_w}",
                             f"--api-socket={sock}", str(pid), "tap0"], pass_fds=(ready_w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    answer = slirp_api(sock, {"execute": "add_hostfwd", "arguments": {
        "proto": "tcp", "host_addr": "127.0.0.1", "host_port": port, "guest_port": 5000}})
    assert "return" in answer, answer
    return proc


def measure(options, directory: str, helper: str, hand: bool) -> list[float]:
    root = os.path.join(directory, "state")
    port = free_port()
    if hand:
        annotations = {"rootless.network": "none"}
    else:
        annotations = {"rootless.network": helper, "rootless.ports": f"{port}:5000"}
    bundle = build_bundle(directory, annotations)
    cid = f"bench-{helper}-{'hand' if hand else 'rootless'}"
    rootless = [options.rootless_bin, "--root", root]
    subprocess.run(rootless + ["run", "-d", "--bundle", bundle, cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    started = None
    try:
        state = json.loads(subprocess.run(rootless + ["state", cid], check=True, capture_output=True).stdout)
        if hand:
            started = by_hand(helper, state["pid"], port, directory)
        send(port, 16 << 20)  # warm up
        return [send(port, options.size << 20) for _ in range(options.rounds)]
    finally:
        subprocess.run(rootless + ["delete", "-f", cid], check=True)
        if isinstance(started, int):
            os.kill(started, 9)
        elif started is not None:
            started.kill()
            started.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--size", type=int, default=256, help="MiB per transfer")
    parser.add_argument("-r", "--rounds", type=int, default=5)
    add_common_options(parser)
    options = parser.parse_args()
    reexec_as_user(options.user, __file__)  # this benchmark is about rootless containers
    with tempfile.TemporaryDirectory(prefix="rootless-netbench-", dir="/var/tmp") as directory:
        for helper in ("pasta", "slirp4netns"):
            results = {}
            for hand in (False, True):
                results[hand] = statistics.median(measure(options, directory, helper, hand))
            print(f"{helper:12} rootless {results[False]:8.1f} MB/s   by hand {results[True]:8.1f} MB/s   "
                  f"ratio {results[False] / results[True]:.2f}   ({options.rounds} x {options.size} MiB)")


if __name__ == "__main__":
    main()
