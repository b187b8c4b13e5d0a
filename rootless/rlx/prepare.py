"""A new rlx container from a source and the options: its record (rootless.rlx.records), and
its bundle: config.json (rootless.rlx.runconfig) and the root (an overlay of the image's
layers, the rootfs directory itself, or a few symlinks for `host`).

Layout of STORE/containers/ID/ besides record.json: bundle/config.json, bundle/rootfs (the
overlay's mount point, or the host sandbox's root), upper/ and work/ (the overlay's).
On any failure the directory is removed again: a failed run leaves nothing.
"""

import os

from rootless import jsonlite as json
from rootless.errors import UsageError
from rootless.rlx import records, runconfig
from rootless.rlx.source import HOST, Source, host_layout


def make(store, source: Source, opts: runconfig.RunOptions, *, name: str | None, auto_remove: bool,
         network: str, debug) -> dict:
    volumes = [runconfig.parse_volume(v, os.path.join(store.root, "volumes")) for v in opts.volumes]
    record = records.create(store.root, name=name, image=source.shown, image_id=source.image_id,
                            command=[], ports=_ports(opts.publish), auto_remove=auto_remove,
                            stop_signal=source.stop_signal, network=network)
    try:
        spec = _spec(store, source, opts, record, volumes, network, debug)
        record["command"] = spec["process"]["args"]
        with open(os.path.join(record["bundle"], "config.json"), "w") as f:
            f.write(json.dumps(spec))
        records.save(store.root, record)
    except BaseException:
        records.remove(store.root, record["id"])
        raise
    return record


def _spec(store, source: Source, opts, record: dict, volumes: list[dict], network: str, debug) -> dict:
    path = records.container_dir(store.root, record["id"])
    rootfs = os.path.join(record["bundle"], "rootfs")
    seccomp = _seccomp(opts.security_opt, debug)
    if source.kind == HOST:
        if opts.userns not in (None, "keep-id"):
            raise UsageError("rlx run host: the sandbox keeps your own UID (--userns keep-id is implied)")
        if os.getcwd() == "/":
            raise UsageError("rlx run host: the current directory is what the sandbox may write: run it from a "
                             "project directory, not /")
        links, dirs = host_layout()
        os.mkdir(rootfs, 0o755)
        for name, target in links.items():
            os.symlink(target, os.path.join(rootfs, name))
        spec = runconfig.host_spec(opts, os.getcwd(), dirs, shell=os.environ.get("SHELL") or "/bin/sh")
    else:
        idmap = _idmap(store)
        if idmap is not None and len(idmap["uidMappings"]) == 1:
            raise UsageError(f"{source.shown}: {_no_subordinate_ids(store)}")
        spec = runconfig.image_spec(source.config, opts, source.passwd, source.group, idmap)
        if source.kind == "dir":
            spec["root"]["path"] = source.rootfs
        else:
            layers = source.layers
            if opts.userns == "keep-id" and idmap is not None:
                from rootless.images import idshift
                target = {k: spec["linux"][k] for k in ("uidMappings", "gidMappings")}
                layers = idshift.mapped_layers(store, layers, target, debug=debug)
            record["layers"] = layers
            os.mkdir(rootfs, 0o755)
            if os.environ.get("RLX_ROOTFS") == "copy":
                debug("root: a copy of the layers (RLX_ROOTFS=copy)")
                copy_root(store, record)
            else:
                spec["annotations"] = dict(spec.get("annotations") or {},
                                           **{"rootless.overlay": _overlay(layers, path, debug)})
    if spec["root"]["path"] == "rootfs":
        spec["root"]["path"] = rootfs
    _make_volumes(store, volumes, spec)
    spec = runconfig.apply(spec, opts, hostname=record["id"][:12], volumes=volumes, network=network)
    if seccomp is not None:
        from rootless.rlx import seccomp_profile
        # after apply: the containers format's groups depend on the capabilities it settled
        spec["linux"]["seccomp"] = seccomp_profile.for_container(seccomp, spec["process"]["capabilities"]["bounding"])
        if spec["linux"]["seccomp"] is None:
            del spec["linux"]["seccomp"]
    if opts.init:
        _add_init(spec)  # last: its mount must come after a --read-only tmpfs on /run
    return spec


def _idmap(store) -> dict | None:
    """The store's map as config.json writes it: its idmap.json as it is (idmap is not
    imported for that), or made now on first use."""
    if not store.rootless:
        return None
    try:
        with open(os.path.join(store.root, "idmap.json")) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        from rootless.images import userns
        return userns.plan_to_json(store.idmap())


def _no_subordinate_ids(store) -> str:
    """Why an image cannot run with the store's single-ID map, and what to do: the idmap
    plan's own words (they name the usermod command)."""
    from rootless.images import userns
    plan = userns.caller_plan()
    if plan.warnings and plan.method == "direct":
        return f"an image needs subordinate IDs: {plan.warnings[0]}"
    return (f"the store {store.root} was made when you had no subordinate IDs: its layers are owned by your "
            "UID alone; remove the store and pull or load the images again")


def _overlay(layers: list[str], path: str, debug) -> str:
    from rootless.images import overlay
    upper, work = os.path.join(path, "upper"), os.path.join(path, "work")
    os.mkdir(upper, 0o755)
    os.mkdir(work, 0o700)
    options = overlay.overlay_options(layers, upper, work)
    extra = os.environ.get("RLX_OVERLAY_OPTIONS")  # e.g. volatile (overlayfs(5)); refused: a copy
    if extra:
        options += "," + extra
    if len(options) >= overlay.PAGE:
        raise UsageError(f"the image has {len(layers)} layers: too many for one overlay mount (squash it)")
    debug(f"root: an overlay of {len(layers)} layers, upper directory {upper}")
    return options


def copy_root(store, record: dict) -> None:
    """The container's root as a copy of its layers (images/flatten.py) instead of an
    overlay, for a kernel that refuses the overlay (RLX_ROOTFS=copy asks for it). It costs the
    image's size and the copying time on every run."""
    from rootless.images import flatten, userns
    rootfs = os.path.join(record["bundle"], "rootfs")
    userns.run_as_mapped_root(store.idmap(), flatten.flatten, record["layers"], rootfs)


def overlay_refused(message: str) -> bool:
    """The runtime's error when the container's init could not mount the overlay
    (rootless/rootfs/apply.py)."""
    return message.startswith("annotation rootless.overlay: mount overlay")


def fall_back_to_copy(store, record: dict, reason: str, debug) -> None:
    """After overlay_refused: the same bundle with a copy of the layers as its root."""
    debug(f"root: {reason}: a copy of the layers instead")
    path = os.path.join(record["bundle"], "config.json")
    with open(path) as f:
        spec = json.loads(f.read())
    spec["annotations"].pop("rootless.overlay", None)
    copy_root(store, record)
    with open(path, "w") as f:
        f.write(json.dumps(spec))


def _make_volumes(store, volumes: list[dict], spec: dict) -> None:
    """Named volumes are made on first use, owned by the container's user (so that user may
    write in them); a host path must exist (podman refuses a missing one too)."""
    user = spec["process"]["user"]
    for volume in volumes:
        if not volume["named"]:
            if not os.path.exists(volume["source"]):
                raise UsageError(f"-v {volume['source']}: no such file or directory on the host")
            continue
        if os.path.isdir(volume["source"]):
            continue
        os.makedirs(volume["source"], mode=0o755)
        host_uid = _host_id(spec["linux"].get("uidMappings"), user["uid"], os.getuid())
        host_gid = _host_id(spec["linux"].get("gidMappings"), user["gid"], os.getgid())
        if (host_uid, host_gid) != (os.getuid(), os.getgid()):
            from rootless.images import userns
            plan = userns.plan_from_json({"uidMappings": spec["linux"]["uidMappings"],
                                          "gidMappings": spec["linux"]["gidMappings"]})
            userns.run_as_mapped_root(plan, os.chown, volume["source"], user["uid"], user["gid"])


def _host_id(mappings: list[dict] | None, inside: int, default: int) -> int:
    for m in mappings or []:
        if m["containerID"] <= inside < m["containerID"] + m["size"]:
            return m["hostID"] + inside - m["containerID"]
    return default


def _seccomp(options: list[str], debug) -> dict | None:
    """The profile the options choose, in either format (rootless.rlx.seccomp_profile): podman's
    default unless seccomp=unconfined or seccomp=FILE; the last seccomp= wins."""
    chosen = None  # podman's default
    for option in options:
        key, _, value = option.partition("=")
        if key == "no-new-privileges" or option == "no-new-privileges":
            continue
        if key != "seccomp" or not value:
            raise UsageError(f"--security-opt {option!r}: supported: seccomp=unconfined, seccomp=FILE, "
                             "no-new-privileges")
        chosen = value
    if chosen == "unconfined":
        debug("seccomp: unconfined (--security-opt seccomp=unconfined)")
        return None
    from rootless.rlx import seccomp_profile
    if chosen is None:
        return seccomp_profile.default_profile(debug)
    return seccomp_profile.read(chosen)


def _add_init(spec: dict) -> None:
    """--init: a small init as PID 1 that reaps and passes signals on (podman's catatonit)."""
    import shutil
    found = shutil.which("catatonit") or shutil.which("tini") or shutil.which("dumb-init")
    if found is None:
        raise UsageError("--init needs catatonit, tini or dumb-init on the host (Debian: apt install catatonit)")
    flag = ["-g", "--"] if os.path.basename(found) in ("catatonit", "tini") else ["--"]
    spec["mounts"].append({"destination": "/run/rlx-init", "type": "bind", "source": found, "options": ["bind", "ro"]})
    spec["process"]["args"] = ["/run/rlx-init"] + flag + spec["process"]["args"]


def _ports(publish: list[str]) -> list[dict]:
    from netns import config as network_config
    if not publish:
        return []
    ports = network_config.parse_ports(",".join(publish))
    return [{"host_ip": p.host_ip, "host_port": host, "container_port": inside, "protocol": p.proto}
            for p in ports for host, inside in p.pairs()]
