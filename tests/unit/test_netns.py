"""netns/: the network plan from annotations (pure), and the helpers' command lines."""

import pytest

from netns import config, pasta, slirp4netns
from netns.config import Port
from rootless.errors import ConfigError


@pytest.mark.parametrize("spec, expected", [
    ("8080:80", Port("127.0.0.1", 8080, 80, "tcp")),
    ("8080:80/udp", Port("127.0.0.1", 8080, 80, "udp")),
    ("0.0.0.0:8080:80/TCP", Port("0.0.0.0", 8080, 80, "tcp")),
    ("10.1.2.3:53:53/udp", Port("10.1.2.3", 53, 53, "udp")),
    ("8080-8081:80-81", Port("127.0.0.1", 8080, 80, "tcp", 2)),
    (" 127.0.0.1:9000-9002:7000-7002/udp ", Port("127.0.0.1", 9000, 7000, "udp", 3)),
])
def test_parse_port(spec: str, expected: Port) -> None:
    assert config.parse_port(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("80", "is not [hostip:]hostport:containerport"),
    ("a:b:c:d", "is not [hostip:]hostport:containerport"),
    ("0:80", "is not a port number"),
    ("65536:80", "is not a port number"),
    ("x:80", "is not a port number"),
    ("8080:80/sctp", "protocol 'sctp'"),
    ("8080-8082:80-81", "differ in length"),
    ("8081-8080:80-79", "ends before it starts"),
    ("localhost:8080:80", "is not an IPv4 address"),
    ("1.2.3.256:8080:80", "is not an IPv4 address"),
])
def test_bad_port_specs_name_the_annotation(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse_port(spec)
    assert "annotation rootless.ports" in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_ports_list_and_duplicates() -> None:
    assert config.parse_ports("8080:80, 8081:81/udp,") == [Port("127.0.0.1", 8080, 80, "tcp"),
                                                          Port("127.0.0.1", 8081, 81, "udp")]
    assert config.parse_ports("53:53/tcp,53:53/udp")  # one port, two protocols: fine
    with pytest.raises(ConfigError, match="published twice"):
        config.parse_ports("8080-8081:80-81,8081:90")
    assert Port("127.0.0.1", 8080, 80, "tcp", 2).pairs() == [(8080, 80), (8081, 81)]


def plan(annotations: dict, new_netns: bool = True, joined_netns: bool = False) -> config.NetworkPlan:
    return config.plan_network(annotations, new_netns=new_netns, joined_netns=joined_netns)


def test_modes() -> None:
    assert plan({}).mode == "none"
    assert plan({}, new_netns=False).mode == "host"
    assert plan({"rootless.network": "host"}, new_netns=False).mode == "host"
    assert plan({"rootless.network": "pasta"}).helper == "pasta"
    assert plan({"rootless.network": "slirp4netns", "rootless.ports": "1:2"}).ports == [Port("127.0.0.1", 1, 2, "tcp")]
    described = plan({"rootless.network": "pasta", "rootless.ports": "8080-8081:80-81/udp", "rootless.dns": "auto"})
    assert described.describe() == "network: pasta, publish 127.0.0.1:8080-8081:80-81/udp, dns auto"


@pytest.mark.parametrize("annotations, new_netns, joined, message", [
    ({"rootless.network": "bridge"}, True, False, "rootless.network='bridge': use one of none, pasta"),
    ({"rootless.network": "host"}, True, False, "rootless.network=host but linux.namespaces has a network"),
    ({"rootless.network": "host"}, False, True, "rootless.network=host but linux.namespaces has a network"),
    ({"rootless.network": "pasta"}, False, False, "needs a new network namespace"),
    ({"rootless.network": "pasta"}, False, True, "needs a new network namespace"),
    ({"rootless.network": "none", "rootless.ports": "1:1"}, True, False, "rootless.ports needs rootless.network"),
    ({"rootless.ports": "1:1"}, True, False, "rootless.ports needs rootless.network"),
    ({"rootless.network": "none", "rootless.dns": "auto"}, True, False, "rootless.dns needs"),
    ({"rootless.network": "pasta", "rootless.dns": "resolver"}, True, False, "rootless.dns: 'resolver'"),
])
def test_bad_plans(annotations: dict, new_netns: bool, joined: bool, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan(annotations, new_netns, joined)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_dns_values() -> None:
    assert config.parse_dns("auto") == []
    assert config.parse_dns("1.1.1.1, 9.9.9.9") == ["1.1.1.1", "9.9.9.9"]


def test_pasta_command_publishes_only_what_was_asked() -> None:
    ports = config.parse_ports("8080-8081:80-81,0.0.0.0:53:53/udp")
    argv = pasta.command("/usr/bin/pasta", 42, "/s/pasta.pid", ports, userns=True)
    assert argv[:2] == ["/usr/bin/pasta", "--config-net"]
    assert ["--netns", "/proc/42/ns/net"] == argv[argv.index("--netns"):argv.index("--netns") + 2]
    assert ["--userns", "/proc/42/ns/user"] == argv[argv.index("--userns"):argv.index("--userns") + 2]
    pairs = list(zip(argv, argv[1:]))
    assert ("-t", "127.0.0.1/8080-8081:80-81") in pairs and ("-u", "0.0.0.0/53:53") in pairs
    assert ("-T", "none") in pairs and ("-U", "none") in pairs and "--no-map-gw" in argv
    bare = pasta.command("/usr/bin/pasta", 42, "/s/pasta.pid", [], userns=False)
    assert ("-t", "none") in zip(bare, bare[1:]) and ("-u", "none") in zip(bare, bare[1:])
    assert "--userns" not in bare and "--netns-only" in bare


def test_slirp4netns_command() -> None:
    argv = slirp4netns.command("/usr/bin/slirp4netns", 42, "/s/api.sock", ready_fd=3, exit_fd=4)
    assert argv[-2:] == ["42", "tap0"]
    assert {"--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3", "--exit-fd=4",
            "--api-socket=/s/api.sock"} <= set(argv)


def test_lifecycle_without_network_does_not_load_netns() -> None:
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    code = (f"import sys; sys.path.insert(0, {str(root)!r})\n"
            "import rootless.create.launcher, rootless.container, rootless.create.init\n"
            "print(sorted(m for m in sys.modules if m.startswith('netns')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['netns', 'netns.loopback']"


def test_resolv_conf_and_hosts() -> None:
    from netns import dns
    host = "# local\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n"
    assert dns.host_resolvers(host) == (["192.0.2.1"], ["search example.org", "options edns0"])
    slirp = plan({"rootless.network": "slirp4netns", "rootless.dns": "auto"})
    assert dns.resolv_conf(slirp, host).splitlines()[1:] == ["search example.org", "options edns0",
                                                              "nameserver 10.0.2.3"]
    pasta_plan = plan({"rootless.network": "pasta", "rootless.dns": "auto"})
    assert "nameserver 192.0.2.1" in dns.resolv_conf(pasta_plan, host)
    listed = plan({"rootless.network": "pasta", "rootless.dns": "9.9.9.9"})
    assert dns.resolv_conf(listed, host).endswith("nameserver 9.9.9.9\n")
    assert dns.hosts(slirp, "box").endswith("10.0.2.100\tbox\n")
    assert [m.destination for m in dns.plan_mounts("/state/c1")] == ["/etc/resolv.conf", "/etc/hosts"]
    assert all(m.bind and m.source.startswith("/state/c1/") for m in dns.plan_mounts("/state/c1"))
