"""The network plan: how a bundle asks for networking, read from config.json's annotations.

  rootless.network  none | pasta | slirp4netns | host
  rootless.ports    comma-separated publish specs: [hostip:]hostport:containerport[/tcp|udp],
                    each port may be a range (8080-8081:80-81); the host IP is 127.0.0.1
                    unless given
  rootless.dns      auto, or a comma-separated list of name server addresses: generate
                    /etc/resolv.conf and /etc/hosts for the container (bind-mounted read-only)

Pure: a plan is data, built from the annotations and the namespace plan, unit-tested without
privileges. A bundle without these annotations never imports this module (see NETWORK_KEYS).
Errors are one line naming the annotation.
"""

from rootless.errors import ConfigError

NETWORK_KEYS = ("rootless.network", "rootless.ports", "rootless.dns")
MODES = ("none", "pasta", "slirp4netns", "host")
HELPER_MODES = ("pasta", "slirp4netns")
DEFAULT_HOST_IP = "127.0.0.1"


class Port:
    """Publish `count` consecutive ports: host_ip:host_port.. -> container_port.. over proto."""

    def __init__(self, host_ip: str, host_port: int, container_port: int, proto: str, count: int = 1):
        self.host_ip, self.host_port, self.container_port = host_ip, host_port, container_port
        self.proto, self.count = proto, count

    def __eq__(self, other) -> bool:
        return isinstance(other, Port) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Port({self.describe()!r})"

    def pairs(self) -> list[tuple[int, int]]:
        """(host port, container port) for each port of the range."""
        return [(self.host_port + i, self.container_port + i) for i in range(self.count)]

    def describe(self) -> str:
        def span(first: int) -> str:
            return f"{first}-{first + self.count - 1}" if self.count > 1 else str(first)
        return f"{self.host_ip}:{span(self.host_port)}:{span(self.container_port)}/{self.proto}"


class NetworkPlan:
    def __init__(self, mode: str, ports: list[Port], dns: list[str] | None):
        self.mode = mode
        self.ports = ports
        self.dns = dns  # None: leave /etc/resolv.conf and /etc/hosts alone; []: "auto"

    @property
    def helper(self) -> str | None:
        return self.mode if self.mode in HELPER_MODES else None

    def describe(self) -> str:
        parts = [f"network: {self.mode}"]
        parts += [f"publish {port.describe()}" for port in self.ports]
        if self.dns is not None:
            parts.append("dns " + (",".join(self.dns) or "auto"))
        return ", ".join(parts)


def _port_number(text: str, annotation_value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"config.json: annotation rootless.ports: {text!r} in {annotation_value!r} "
                          "is not a port number (1-65535)")
    return int(text)


def _port_range(text: str, spec: str) -> tuple[int, int]:
    """"80" -> (80, 1); "80-81" -> (80, 2)."""
    first, dash, last = text.partition("-")
    start = _port_number(first, spec)
    end = _port_number(last, spec) if dash else start
    if end < start:
        raise ConfigError(f"config.json: annotation rootless.ports: range {text!r} in {spec!r} ends before it starts")
    return start, end - start + 1


def _host_ip(text: str, spec: str) -> str:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ConfigError(f"config.json: annotation rootless.ports: host address {text!r} in {spec!r} "
                          "is not an IPv4 address")
    return ".".join(str(int(p)) for p in parts)


def parse_port(spec: str) -> Port:
    """One publish spec: [hostip:]hostport:containerport[/tcp|udp]."""
    text, slash, proto = spec.strip().partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"config.json: annotation rootless.ports: protocol {proto!r} in {spec!r}: use tcp or udp")
    fields = text.split(":")
    if len(fields) == 3:
        host_ip = _host_ip(fields[0], spec)
        fields = fields[1:]
    elif len(fields) == 2:
        host_ip = DEFAULT_HOST_IP
    else:
        raise ConfigError(f"config.json: annotation rootless.ports: {spec!r} is not "
                          "[hostip:]hostport:containerport[/tcp|udp]")
    host_port, host_count = _port_range(fields[0], spec)
    container_port, container_count = _port_range(fields[1], spec)
    if host_count != container_count:
        raise ConfigError(f"config.json: annotation rootless.ports: {spec!r}: the host and container ranges "
                          "differ in length")
    if container_port + container_count > 65536 or host_port + host_count > 65536:
        raise ConfigError(f"config.json: annotation rootless.ports: {spec!r}: range beyond port 65535")
    return Port(host_ip, host_port, container_port, proto, host_count)


def parse_ports(value: str) -> list[Port]:
    ports = [parse_port(spec) for spec in value.split(",") if spec.strip()]
    seen: dict[tuple[str, str, int], str] = {}
    for port in ports:
        for host_port, _ in port.pairs():
            key = (port.proto, port.host_ip, host_port)
            if key in seen:
                raise ConfigError(f"config.json: annotation rootless.ports: {port.proto} port "
                                  f"{port.host_ip}:{host_port} is published twice")
            seen[key] = port.describe()
    return ports


def parse_dns(value: str) -> list[str]:
    """"auto" -> [] (the helper's resolver); else a list of IPv4 name servers."""
    if value.strip() == "auto":
        return []
    servers = [v.strip() for v in value.split(",") if v.strip()]
    if not servers:
        raise ConfigError("config.json: annotation rootless.dns: empty: use auto or a list of name server addresses")
    result = []
    for server in servers:
        parts = server.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise ConfigError(f"config.json: annotation rootless.dns: {server!r} is not an IPv4 address "
                              "(use auto or a comma-separated list of addresses)")
        result.append(server)
    return result


def plan_network(annotations: dict, *, new_netns: bool, joined_netns: bool) -> NetworkPlan:
    """The plan for a container. new_netns: linux.namespaces creates a network namespace;
    joined_netns: it joins one by path."""
    mode = annotations.get("rootless.network")
    if mode is None:
        mode = "host" if not (new_netns or joined_netns) else "none"
    if mode not in MODES:
        raise ConfigError(f"config.json: annotation rootless.network={mode!r}: use one of {', '.join(MODES)}")
    if mode == "host" and (new_netns or joined_netns):
        raise ConfigError("config.json: annotation rootless.network=host but linux.namespaces has a network "
                          "namespace: remove one of them")
    if mode != "host" and not new_netns:
        raise ConfigError(f"config.json: annotation rootless.network={mode} needs a new network namespace: "
                          "add {\"type\": \"network\"} (without a path) to linux.namespaces")
    ports = parse_ports(annotations.get("rootless.ports", ""))
    if ports and mode not in HELPER_MODES:
        raise ConfigError(f"config.json: annotation rootless.ports needs rootless.network=pasta or slirp4netns "
                          f"(it is {mode})")
    dns = annotations.get("rootless.dns")
    dns_servers = parse_dns(dns) if dns is not None else None
    if dns_servers is not None and mode not in HELPER_MODES:
        raise ConfigError(f"config.json: annotation rootless.dns needs rootless.network=pasta or slirp4netns "
                          f"(it is {mode})")
    return NetworkPlan(mode, ports, dns_servers)
