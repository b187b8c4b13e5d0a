"""Rootless networking (netns/): pasta and slirp4netns attached in the create window, ports
published on the host's loopback, and no helper, watcher, socket or pid file left behind.

Test traffic stays on 127.0.0.1. What the container saw is read from the host through
/proc/INIT/net (the test runs as root): its interfaces, and its UDP counters (busybox's nc has
no UDP mode here, so a datagram's arrival shows as Udp NoPorts in the container's netns)."""

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers.runtime import Runtime

HELPERS = ("pasta", "slirp4netns")
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


def free_ports(count: int = 1, proto: int = socket.SOCK_STREAM) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 for TCP and UDP (racy, but
    random: tests in parallel rarely collide)."""
    for _ in range(200):
        first = random.randrange(20000, 60000)
        try:
            for port in range(first, first + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as probe:
                        probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free ports on 127.0.0.1")


def net_bundle(rt: Runtime, args: list[str], mode: str, ports: str | None = None, **extra: str) -> Path:
    annotations = {"rootless.network": mode, **extra}
    if ports:
        annotations["rootless.ports"] = ports
    return rt.bundle(args, annotations=annotations)


def http_get(port: int, path: str = "/passwd", timeout: float = 10) -> str:
    """GET from 127.0.0.1:port, retried until the server inside answers."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            if data:
                return data.decode(errors="replace")
        except OSError as err:
            last = err
        time.sleep(0.05)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port} ({last})")


def run_detached(rt: Runtime, bundle: Path) -> tuple[str, dict]:
    container_id = rt.new_id()
    rt.run("create", "--bundle", bundle, container_id, check=True)
    rt.run("start", container_id, check=True)
    return container_id, rt.state(container_id)


def network_record(rt: Runtime, container_id: str) -> dict:
    return json.loads((rt.state_dir(container_id) / "state.json").read_text())["network"]


def interfaces(pid: int) -> list[str]:
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines)


def udp_counter(pid: int, name: str) -> int:
    lines = [line.split() for line in Path(f"/proc/{pid}/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(lines[1][lines[0].index(name)])


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def start_httpd(rt: Runtime, helper: str) -> tuple[int, Path, str, dict]:
    """A started container serving /etc over HTTP on a published port that already answers:
    (host port, bundle, container id, state)."""
    port = free_ports()
    bundle = net_bundle(rt, HTTPD, helper, f"{port}:80")
    container_id, state = run_detached(rt, bundle)
    assert "root:x:0:0" in http_get(port)
    return port, bundle, container_id, state


@pytest.mark.parametrize("helper", HELPERS)
def test_tcp_port_answers_on_loopback(rootless_runtime: Runtime, helper: str) -> None:
    rt = rootless_runtime
    port, bundle, container_id, state = start_httpd(rt, helper)
    record = network_record(rt, container_id)
    assert record["mode"] == helper and record["ports"] == [f"127.0.0.1:{port}:80/tcp"]
    assert alive(record["helper_pid"]) and alive(record["watcher_pid"])
    names = interfaces(state["pid"])
    assert "lo" in names and len(names) == 2, names
    # Loopback only by default: the published port is bound on 127.0.0.1, not on every address.
    bound = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
             if line.split()[3] == "0A"]
    assert f"0100007F:{port:04X}" in bound and f"00000000:{port:04X}" not in bound
    rt.run("delete", "-f", container_id, check=True)
    assert wait_gone([record["helper_pid"], record["watcher_pid"]], timeout=1) == []
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper", HELPERS)
def test_udp_port_reaches_the_container(rootless_runtime: Runtime, helper: str) -> None:
    rt = rootless_runtime
    port = free_ports()
    bundle = net_bundle(rt, ["sleep", "600"], helper, f"{port}:5353/udp")
    container_id, state = run_detached(rt, bundle)
    before = udp_counter(state["pid"], "NoPorts")
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        while udp_counter(state["pid"], "NoPorts") == before:
            assert time.monotonic() < deadline, "no datagram reached the container"
            sender.sendto(b"ping", ("127.0.0.1", port))
            time.sleep(0.05)
    rt.run("delete", "-f", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper", HELPERS)
def test_port_range(rootless_runtime: Runtime, helper: str) -> None:
    rt = rootless_runtime
    port = free_ports(2)
    server = "httpd -p 80 -h /etc && exec httpd -f -p 81 -h /proc/self"
    bundle = net_bundle(rt, ["sh", "-c", server], helper, f"127.0.0.1:{port}-{port + 1}:80-81")
    container_id, state = run_detached(rt, bundle)
    assert "root:x:0:0" in http_get(port)
    assert "Name:" in http_get(port + 1, "/status")
    rt.run("delete", "-f", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


def test_two_containers_at_once(rootless_runtime: Runtime) -> None:
    rt = rootless_runtime
    started = [start_httpd(rt, helper) for helper in ("pasta", "pasta", "slirp4netns")]
    for port, *_ in started:
        assert "root:x:0:0" in http_get(port)
    for port, bundle, container_id, state in started:
        rt.run("delete", "-f", container_id, check=True)
        rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper", HELPERS)
def test_kill_9_of_the_init_stops_the_helper(rootless_runtime: Runtime, helper: str) -> None:
    rt = rootless_runtime
    _, bundle, container_id, state = start_httpd(rt, helper)
    record = network_record(rt, container_id)
    os.kill(state["pid"], signal.SIGKILL)
    assert wait_gone([record["helper_pid"], record["watcher_pid"]]) == []
    assert not any(Path(f).exists() for f in record["files"]), os.listdir(rt.state_dir(container_id))
    assert rt.state(container_id)["status"] == "stopped"
    rt.run("delete", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper", HELPERS)
def test_created_container_kill_9_and_delete(rootless_runtime: Runtime, helper: str) -> None:
    """The helper runs from `create` on, and a created (never started) container's init
    killed with -9 takes it along."""
    rt = rootless_runtime
    bundle = net_bundle(rt, ["sleep", "600"], helper)
    container_id = rt.new_id()
    rt.run("create", "--bundle", bundle, container_id, check=True)
    state = rt.state(container_id)
    record = network_record(rt, container_id)
    assert alive(record["helper_pid"])
    assert len(interfaces(state["pid"])) == 2
    os.kill(state["pid"], signal.SIGKILL)
    assert wait_gone([record["helper_pid"], record["watcher_pid"]]) == []
    rt.run("delete", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


def test_foreground_run_cleans_up(rootless_runtime: Runtime) -> None:
    rt = rootless_runtime
    bundle = net_bundle(rt, ["sh", "-c", "cat /proc/net/dev"], "slirp4netns")
    container_id = rt.new_id()
    result = rt.run("run", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    assert "tap0:" in result.stdout
    rt.assert_no_leaks(container_id, bundle=bundle)


def test_none_has_only_lo(rootless_runtime: Runtime) -> None:
    rt = rootless_runtime
    bundle = net_bundle(rt, ["sleep", "600"], "none")
    container_id, state = run_detached(rt, bundle)
    assert interfaces(state["pid"]) == ["lo"]
    assert "network" in rt.state_dir(container_id).joinpath("state.json").read_text()
    rt.run("delete", "-f", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper", HELPERS)
def test_port_in_use_fails_create_cleanly(rootless_runtime: Runtime, helper: str) -> None:
    rt = rootless_runtime
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        bundle = net_bundle(rt, ["sleep", "600"], helper, f"{port}:80")
        container_id = rt.new_id()
        result = rt.run("create", "--bundle", bundle, container_id)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and helper in message, message
    rt.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("annotations, expected", [
    ({"rootless.network": "host"}, "rootless.network=host"),
    ({"rootless.network": "bridge"}, "rootless.network='bridge'"),
    ({"rootless.network": "none", "rootless.ports": "8080:80"}, "rootless.ports"),
    ({"rootless.network": "pasta", "rootless.ports": "80:80/sctp"}, "rootless.ports"),
])
def test_bad_annotations_fail_create(rootless_runtime: Runtime, annotations: dict, expected: str) -> None:
    rt = rootless_runtime
    bundle = rt.bundle(["true"], annotations=annotations)
    container_id = rt.new_id()
    result = rt.run("create", "--bundle", bundle, container_id)
    assert result.returncode == 1 and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    rt.assert_no_leaks(container_id, bundle=bundle)


def test_host_mode_shares_the_host_network(rootless_runtime: Runtime) -> None:
    rt = rootless_runtime
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    bundle = rt.bundle(["sleep", "600"], annotations={"rootless.network": "host"},
                       linux={"namespaces": namespaces})
    container_id, state = run_detached(rt, bundle)
    assert os.readlink(f"/proc/{state['pid']}/ns/net") == os.readlink("/proc/self/ns/net")
    rt.run("delete", "-f", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper, dns, expected", [
    ("slirp4netns", "auto", "nameserver 10.0.2.3"),
    ("pasta", "192.0.2.53,192.0.2.54", "nameserver 192.0.2.53\nnameserver 192.0.2.54"),
])
def test_generated_resolv_conf_and_hosts(rootless_runtime: Runtime, helper: str, dns: str, expected: str) -> None:
    rt = rootless_runtime
    script = "cat /etc/resolv.conf /etc/hosts; echo x >> /etc/hosts || echo read-only"
    bundle = net_bundle(rt, ["sh", "-c", script], helper, **{"rootless.dns": dns})
    container_id = rt.new_id()
    result = rt.run("run", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout and "127.0.0.1\tlocalhost" in result.stdout
    assert "\trootless\n" in result.stdout and result.stdout.rstrip().endswith("read-only")
    rt.assert_no_leaks(container_id, bundle=bundle)


@pytest.mark.parametrize("helper", HELPERS)
def test_both_modes_publish_or_refuse(runtime: Runtime, helper: str) -> None:
    """Root containers too: slirp4netns works; pasta (which drops to nobody before it opens the
    namespace) is refused for a root container without a user namespace, in one line."""
    rt = runtime
    port = free_ports()
    bundle = net_bundle(rt, HTTPD, helper, f"{port}:80")
    if helper == "pasta" and not rt.rootless:
        container_id = rt.new_id()
        result = rt.run("create", "--bundle", bundle, container_id)
        assert result.returncode == 1 and "use rootless.network=slirp4netns" in result.stderr, result.stderr
        rt.assert_no_leaks(container_id, bundle=bundle)
        return
    container_id, state = run_detached(rt, bundle)
    assert "root:x:0:0" in http_get(port)
    rt.run("delete", "-f", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


def test_flags_stand_for_the_annotations(rootless_runtime: Runtime) -> None:
    """`--network` and `-p` on create/run set rootless.network and rootless.ports for a plain
    runc bundle (no annotations in its config.json)."""
    rt = rootless_runtime
    port = free_ports()
    bundle = rt.bundle(HTTPD)
    container_id = rt.new_id()
    rt.run("run", "-d", "--network", "slirp4netns", "-p", f"{port}:80", "--bundle", bundle, container_id,
           check=True)
    state = rt.state(container_id)
    assert "root:x:0:0" in http_get(port)
    record = network_record(rt, container_id)
    assert record["mode"] == "slirp4netns" and record["ports"] == [f"127.0.0.1:{port}:80/tcp"]
    assert state["annotations"]["rootless.network"] == "slirp4netns"
    rt.run("delete", "-f", container_id, check=True)
    assert wait_gone([record["helper_pid"], record["watcher_pid"]]) == []
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


@pytest.mark.parametrize("helper", HELPERS)
def test_addresses_and_routes_seen_over_netlink(rootless_runtime: Runtime, helper: str) -> None:
    """The container's addressing, read with pyroute2 (netns.inspect) as the unprivileged user:
    slirp4netns's fixed network, or pasta's copy of the host's address and default route."""
    from netns import inspect
    rt = rootless_runtime
    bundle = net_bundle(rt, ["sleep", "600"], helper)
    container_id, state = run_detached(rt, bundle)
    code = ("import json, sys; from netns import inspect; "
            f"print(json.dumps(inspect.addresses_and_routes({state['pid']})))")
    seen = json.loads(subprocess.run(rt.python_command(code), capture_output=True, text=True, check=True,
                                     env=rt._env(None)).stdout)
    assert "lo 127.0.0.1/8" in seen["addresses"]
    if helper == "slirp4netns":
        assert "tap0 10.0.2.100/24" in seen["addresses"]
        assert "default via 10.0.2.2 dev tap0" in seen["routes"]
    else:
        host = inspect.addresses_and_routes(os.getpid())  # the host's, read the same way
        host_default = [r for r in host["routes"] if r.startswith("default")]
        assert [r for r in seen["routes"] if r.startswith("default")] and host_default
        ours = {a.split()[1] for a in seen["addresses"] if not a.startswith("lo ")}
        assert ours and ours <= {a.split()[1] for a in host["addresses"]}  # a copy of the host's address
    rt.run("delete", "-f", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle, pids=(state["pid"],))


def test_network_flag_adds_the_namespace_runc_templates_lack(rootless_runtime: Runtime) -> None:
    rt = rootless_runtime
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]  # `runc spec --rootless`
    bundle = rt.bundle(["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | sort | tr -d ' '"],
                       linux={"namespaces": namespaces})
    result = rt.run("--debug", "run", "--network", "slirp4netns", "--bundle", bundle, rt.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lo", "tap0"]
    assert "tap0 10.0.2.100/24" in result.stderr  # --debug shows the addressing read over netlink


@pytest.mark.parametrize("helper", HELPERS)
def test_kill_9_of_the_cli_at_any_moment_leaves_no_helper(rootless_runtime: Runtime, helper: str) -> None:
    """SIGKILL of `create` at a spread of moments (before, during and after the helper starts):
    the init notices its parent is gone, and the watcher or the exit fd takes the helper down."""
    rt = rootless_runtime
    bundle = net_bundle(rt, ["sleep", "600"], helper, f"{free_ports()}:80")
    for step in range(12):
        container_id = rt.new_id()
        proc = rt.popen("create", "--bundle", bundle, container_id, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        time.sleep(step * 0.012)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # Killed after "ack" the container exists (created): delete -f ends it. Killed before,
        # its init and the helper go by themselves, a moment later.
        rt.run("delete", "-f", container_id, check=True)
        deadline = time.monotonic() + 5
        while rt_processes(container_id) and time.monotonic() < deadline:
            time.sleep(0.02)
        rt.assert_no_leaks(container_id, bundle=bundle)


def rt_processes(container_id: str) -> list:
    from helpers import leaks
    return leaks.processes_mentioning(container_id)


@pytest.mark.parametrize("helper", HELPERS)
def test_a_shim_managed_container_stops_its_helper_at_exit(rootless_runtime: Runtime, helper: str) -> None:
    """Under the shim, nobody calls delete when the container exits: its network helper still
    goes with the init."""
    rt = rootless_runtime
    bundle = net_bundle(rt, ["sh", "-c", "sleep 0.5"], helper)
    container_id = rt.new_id()
    rt.run("run", "--detach", "--shim", "--bundle", bundle, container_id, check=True)
    record = network_record(rt, container_id)
    assert rt.run("wait", container_id, check=True).stdout == "0\n"
    assert wait_gone([record["helper_pid"], record["watcher_pid"]]) == []
    rt.run("delete", container_id, check=True)
    rt.assert_no_leaks(container_id, bundle=bundle)
