"""The image's config turned into an OCI config.json: pure, so it is unit-tested as data.

Entrypoint + Cmd become process.args, Env the environment (PATH added if the image has none),
WorkingDir the cwd, User the uid/gid resolved from the image's own /etc/passwd and /etc/group
(supplementary groups too, for real root: runc refuses them rootless), Labels annotations; ExposedPorts, Volumes and StopSignal,
which a runtime does not act on, become annotations for the tools that do (`-p` defaults,
volumes, the stop signal). No resources: the bundle runs as the image is, on any runtime.
"""

from rootless.images.digest import ImageError
from rootless.oci.specgen import default_spec

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STOP_SIGNAL = "org.opencontainers.image.stopSignal"
EXPOSED_PORTS = "org.opencontainers.image.exposedPorts"
VOLUMES = "org.opencontainers.image.volumes"


def parse_accounts(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(user: str, passwd: str, group: str) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) of a Docker `User` value: name, uid, name:group, uid:gid."""
    if not user:
        user = "0"
    name, _, group_name = user.partition(":")
    users, groups = parse_accounts(passwd), parse_accounts(group)
    entry = next((u for u in users if len(u) >= 4 and (u[0] == name or (name.isdigit() and u[2] == name))), None)
    if name.isdigit():
        uid = int(name)
    elif entry is not None and entry[2].isdigit():
        uid = int(entry[2])
    else:
        raise ImageError(f"the image's User {user!r}: no user {name!r} in the image's /etc/passwd")
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    if group_name:
        if group_name.isdigit():
            gid = int(group_name)
        else:
            found = next((g for g in groups if len(g) >= 3 and g[0] == group_name and g[2].isdigit()), None)
            if found is None:
                raise ImageError(f"the image's User {user!r}: no group {group_name!r} in the image's /etc/group")
            gid = int(found[2])
    extra = []
    if entry is not None and not group_name:
        extra = sorted({int(g[2]) for g in groups
                        if len(g) >= 4 and g[2].isdigit() and entry[0] in g[3].split(",") and int(g[2]) != gid})
    return uid, gid, extra


def to_spec(image_config: dict, passwd: str, group: str, idmap: dict | None) -> dict:
    """idmap: {"uidMappings", "gidMappings"} the layers were unpacked with (None: real root,
    no user namespace)."""
    cfg = image_config.get("config") or {}
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if not args:
        raise ImageError("the image has neither Entrypoint nor Cmd: give a command")
    spec = default_spec(rootless=idmap is not None, args=args, terminal=False)
    env = list(cfg.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    process = spec["process"]
    process["env"] = env
    process["cwd"] = cfg.get("WorkingDir") or "/"
    uid, gid, extra = resolve_user(cfg.get("User") or "", passwd, group)
    process["user"] = {"uid": uid, "gid": gid}
    # runc refuses additionalGids in any rootless container ("cannot set any additional groups
    # in a rootless container"): a rootless bundle leaves them out so that every runtime runs it.
    if extra and idmap is None:
        process["user"]["additionalGids"] = extra
    spec["root"]["readonly"] = False
    annotations = dict(cfg.get("Labels") or {})
    if cfg.get("StopSignal"):
        annotations[STOP_SIGNAL] = cfg["StopSignal"]
    if cfg.get("ExposedPorts"):
        annotations[EXPOSED_PORTS] = ",".join(sorted(cfg["ExposedPorts"]))
    if cfg.get("Volumes"):
        annotations[VOLUMES] = ",".join(sorted(cfg["Volumes"]))
    if annotations:
        spec["annotations"] = annotations
    if idmap is not None:
        spec["linux"]["uidMappings"] = idmap["uidMappings"]
        spec["linux"]["gidMappings"] = idmap["gidMappings"]
    return spec
