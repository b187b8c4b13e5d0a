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


def subordinate_mappings(path: str) -> list[dict]:
    """The caller mapped to root, then the caller's first range of PATH (/etc/subuid or
    /etc/subgid) from container ID 1: the map podman and a multi-ID bundle use (newuidmap)."""
    import pwd
    me = os.getuid() if path.endswith("uid") else os.getgid()
    names = {str(os.getuid()), pwd.getpwuid(os.getuid()).pw_name}
    with open(path) as f:
        for line in f:
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[0] in names:
                return [{"containerID": 0, "hostID": me, "size": 1},
                        {"containerID": 1, "hostID": int(fields[1]), "size": int(fields[2])}]
    sys.exit(f"no range for {pwd.getpwuid(os.getuid()).pw_name} in {path}")


class Podman:
    """podman as the current (unprivileged) user, with a store of its own under DIRECTORY and
    an image imported from ROOTFS (no registry). Runtimes are given per call."""

    IMAGE = "localhost/rootless-bench"

    def __init__(self, directory: str, rootfs: str, driver: str = "vfs"):
        import subprocess
        self.home = directory
        conf = os.path.join(directory, "containers.conf")
        with open(conf, "w") as f:
            f.write('[engine]\nruntime_supports_json = ["crun", "runc", "kata", "runsc", "rootless"]\n'
                    'events_logger = "file"\n[containers]\nlog_driver = "k8s-file"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        # podman refuses a runroot longer than 50 characters.
        self.runroot = os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), f"rootless-bench-{os.getpid()}")
        self.base = ["podman", "--root", os.path.join(directory, "storage"), "--runroot", self.runroot,
                     "--storage-driver", driver, "--cgroup-manager", "cgroupfs"]
        tar = os.path.join(directory, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        self.run(["import", tar, self.IMAGE], check=True)

    def run(self, args: list[str], runtime: str | None = None, check: bool = False):
        import subprocess
        argv = self.base + (["--runtime", runtime] if runtime else []) + args
        result = subprocess.run(argv, env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and result.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def default_seccomp(self) -> dict:
        """linux.seccomp of the config.json podman writes for a default container: its
        default profile as a runtime receives it."""
        import json
        cid = self.run(["create", "--runtime", "runc", "--network", "none", self.IMAGE, "true"], check=True).stdout.strip()
        try:
            self.run(["init", cid], check=True)  # config.json is written when the runtime creates
            userdata = self.run(["inspect", "--format", "{{.StaticDir}}", cid], check=True).stdout.strip()
            with open(os.path.join(userdata, "config.json")) as f:
                return json.load(f)["linux"]["seccomp"]
        finally:
            self.run(["rm", "-f", cid])

    def close(self) -> None:
        import subprocess
        self.run(["rm", "--all", "--force"])
        subprocess.run(["podman", "unshare", "rm", "-rf", os.path.join(self.home, "storage"), self.runroot],
                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def median_ms(values: list[float]) -> float:
    import statistics
    return statistics.median(values) * 1000


def time_one(argv: list[str], cwd: str) -> float:
    """Wall time of one command, which must succeed (the benchmark stops with its error)."""
    import subprocess
    import time
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return elapsed


def runtime_commands(rootless_bin: str, directory: str, tag: str = "") -> dict[str, list[str]]:
    """rootless and runc, each with a state root of its own under DIRECTORY: the side-by-side
    pair every benchmark times."""
    suffix = f"-{tag}" if tag else ""
    return {"rootless": [rootless_bin, "--root", os.path.join(directory, f"state-rootless{suffix}")],
            "runc": ["runc", "--root", os.path.join(directory, f"state-runc{suffix}")]}
