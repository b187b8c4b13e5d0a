"""What a container's network namespace holds, read over netlink with pyroute2: addresses and
routes, for checks and for `--debug`. pyroute2 costs about 200 ms to import, so only these
functions load it, in a forked child that joins the container's namespaces (the caller's
namespaces stay as they are)."""

import os

from rootless import jsonlite as json
from rootless.linux import syscalls as sc
from rootless.errors import RootlessError


def addresses_and_routes(pid: int) -> dict:
    """{"addresses": ["eth0 10.0.2.100/24", ...], "routes": ["default via 10.0.2.2", ...]} of the
    network namespace of process `pid` (IPv4 routes)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(_read_in_namespace(pid)).encode())
            os._exit(0)
        except BaseException as err:
            os.write(write_end, json.dumps({"error": f"{type(err).__name__}: {err}"}).encode())
            os._exit(1)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(child, 0)
    result = json.loads(data or b'{"error": "no answer"}')
    if "error" in result:
        raise RootlessError(f"read the network namespace of {pid}: {result['error']}")
    return result


def _read_in_namespace(pid: int) -> dict:
    # An unprivileged caller has its rights over the container's network namespace through the
    # container's user namespace, which it owns: join that first (the child is single-threaded).
    order = [("user", sc.CLONE_NEWUSER)] if os.geteuid() != 0 else []
    for name, flag in order + [("net", sc.CLONE_NEWNET)]:
        path = f"/proc/{pid}/ns/{name}"
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, flag, path)
        finally:
            os.close(fd)
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        addresses = [f"{names.get(a['index'])} {a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                     for a in ipr.get_addr(family=2)]
        routes = []
        for route in ipr.get_routes(family=2, table=254):
            destination = route.get_attr("RTA_DST")
            where = f"{destination}/{route['dst_len']}" if destination else "default"
            gateway = route.get_attr("RTA_GATEWAY")
            routes.append(where + (f" via {gateway}" if gateway else "") + f" dev {names.get(route.get_attr('RTA_OIF'))}")
    return {"addresses": sorted(addresses), "routes": routes}
