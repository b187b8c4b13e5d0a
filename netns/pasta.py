"""pasta (from passt) attached to a container's network namespace.

pasta forks into the background once the namespace is configured and writes its PID with -P;
the foreground process's exit status says whether it started. It does not exit when the
namespace's last process dies: the watcher (netns.spawn) kills it."""

import os

from netns import spawn
from rootless.errors import RootlessError

PID_FILE = "pasta.pid"


def command(binary: str, init_pid: int, pid_file: str, ports: list, *, userns: bool, dns_forward: str | None = None
            ) -> list[str]:
    """Publish only what was asked (-t/-u none otherwise, never pasta's "auto"), nothing from the
    namespace to the host (-T/-U none), and no route to the host's loopback (--no-map-gw)."""
    argv = [binary, "--config-net", "--quiet", "--netns", f"/proc/{init_pid}/ns/net", "-P", pid_file,
            "--no-map-gw", "-T", "none", "-U", "none"]
    if userns:
        argv += ["--userns", f"/proc/{init_pid}/ns/user"]
    else:
        argv += ["--netns-only", "--runas", f"{os.getuid()}:{os.getgid()}"]
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        specs = [_spec(port) for port in ports if port.proto == proto]
        for spec in specs or ["none"]:
            argv += [flag, spec]
    return argv


def _spec(port) -> str:
    def span(first: int) -> str:
        return f"{first}-{first + port.count - 1}" if port.count > 1 else str(first)
    return f"{port.host_ip}/{span(port.host_port)}:{span(port.container_port)}"


def start(plan, init_pid: int, state_dir: str, *, userns: bool) -> dict:
    """Start pasta and return what detach() needs; raises RootlessError and leaves nothing
    behind when pasta does not start."""
    binary = spawn.require("pasta", "passt")
    if not userns and os.geteuid() == 0:
        # As root, pasta switches to nobody before it opens the namespace, which root's
        # namespace files then refuse ("Couldn't open network namespace").
        raise RootlessError("rootless.network=pasta: pasta cannot attach to a root container without a user "
                            "namespace: use rootless.network=slirp4netns, or add a user namespace")
    pid_file = os.path.join(state_dir, PID_FILE)
    argv = command(binary, init_pid, pid_file, plan.ports, userns=userns)
    pid, err_fd = spawn.spawn(argv)
    try:
        status = spawn.wait_exit(pid, 10.0)
        if status is None:
            spawn.stop(pid, None)
            spawn.remove([pid_file])
            raise RootlessError("start pasta: it did not finish setting up within 10 s")
        if status != 0:
            spawn.remove([pid_file])
            reason = spawn.read_error(err_fd) or f"exit status {status}"
            raise RootlessError(f"start pasta: {reason} (check rootless.ports: is a host port in use?)")
    finally:
        os.close(err_fd)
    try:
        with open(pid_file) as f:
            daemon = int(f.read().strip())
    except (OSError, ValueError) as err:
        raise RootlessError(f"start pasta: no PID in {pid_file}: {err}") from None
    return {"helper": "pasta", "helper_pid": daemon, "files": [pid_file]}
