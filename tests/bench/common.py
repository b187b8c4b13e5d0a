"""What the benchmarks share: they measure rootless containers, so run as an unprivileged user."""

import os
import shutil
import sys


def add_common_options(parser) -> None:
    parser.add_argument("--rootless-bin", default=shutil.which("rootless") or
                        os.path.join(os.path.dirname(sys.executable), "rootless"))
    parser.add_argument("--user", default=os.environ.get("ROOTLESS_TEST_USER", "rootless-test"))


def reexec_as_user(user_name: str, script: str) -> None:
    """As root, run this script again as `user_name` (the test user) with the same arguments,
    the environment a login would give; as anyone else, return."""
    if os.geteuid() != 0:
        return
    import pwd
    user = pwd.getpwnam(user_name)
    env = {"HOME": user.pw_dir, "PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": f"/run/user/{user.pw_uid}"}
    argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
            sys.executable, os.path.abspath(script), *sys.argv[1:]]
    os.execvpe("setpriv", argv, env)


def build_rootfs(directory: str, applets: tuple[str, ...] = ("sh", "true", "sleep", "nc")) -> str:
    """A busybox rootfs at DIRECTORY/rootfs (made once), for bundles made by write_bundle."""
    rootfs = os.path.join(directory, "rootfs")
    if not os.path.exists(rootfs):
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
        for applet in applets:
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        for name in ("proc", "sys", "dev", "tmp", "etc"):
            os.makedirs(os.path.join(rootfs, name), exist_ok=True)
    return rootfs


def write_bundle(bundle: str, rootfs: str, args: list[str], annotations: dict | None = None,
                 network: bool = False) -> str:
    """`runc spec --rootless` in BUNDLE (created), pointed at ROOTFS, running ARGS without a
    terminal; with network, a network namespace of its own (the template shares the host's)."""
    import json
    import subprocess
    os.makedirs(bundle, exist_ok=True)
    subprocess.run(["runc", "spec", "--rootless", "-b", bundle], check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["root"]["path"] = rootfs
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    if annotations:
        config["annotations"] = annotations
    if network and not any(ns["type"] == "network" for ns in config["linux"]["namespaces"]):
        config["linux"]["namespaces"].append({"type": "network"})
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return bundle


def pss_kib(pid: int) -> int:
    """The proportional set size of process PID in KiB: its private pages plus its share of
    the pages it shares with other processes."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")
