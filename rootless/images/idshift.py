"""Chowned copies of the store's layers for another ID mapping: `rlx run --userns keep-id`.

The store's layers are owned as the store's map says (container 0 -> the caller, 1.. -> the
subordinate IDs). keep-id maps the caller to their own UID inside and the subordinate IDs to
the IDs below and above it, so through that map an image's root:root file would show as the
caller's UID and every other owner shifted by one. An idmapped mount cannot fix that for an
unprivileged user (the layers' filesystem belongs to the initial user namespace), so, as
podman does (containers/storage keeps a chowned layer per ID mapping), each layer is copied
once per mapping with every owner moved to the host ID the target map gives the image's own
ID. The copy is made as root of the store's user namespace, where every subordinate ID is
mapped; it keeps hard links, symlinks (lchown), whiteouts and other special files, setuid
bits (chmod after chown, which clears them), xattrs and file capabilities (chown clears
security.capability: it is written back with its root ID moved like an owner).

Layout: STORE/mapped/KEY/HEX, KEY naming the target map (a hash of it), HEX the layer's diff
ID, as in layers/. A copy is built in tmp/ and renamed in whole under a lock of its own, so a
failed or killed copy leaves only tmp/ garbage; `rlx rmi` and `rlx prune` remove the copies
of the layers they remove (Store.prune).
"""

import os
import stat

from rootless.hashing import sha256

CAPABILITY = "security.capability"


def map_key(target: dict) -> str:
    """The store's name of a target map: the same map always gets the same key."""
    text = repr([sorted((m["containerID"], m["hostID"], m["size"]) for m in target[k])
                 for k in ("uidMappings", "gidMappings")])
    return sha256()(text.encode()).hexdigest()[:16]


def segments(store_maps: list[dict], target_maps: list[dict]) -> list[tuple[int, int, int]]:
    """(image ID start, store-namespace ID start, count): an image's ID c, which the target map
    puts on host ID K(c), must be owned by S^-1(K(c)) in the store's namespace. IDs the target
    map leaves out are left as they are."""
    found = []
    for t in target_maps:
        for s in store_maps:
            low, high = max(t["hostID"], s["hostID"]), min(t["hostID"] + t["size"], s["hostID"] + s["size"])
            if low < high:
                found.append((t["containerID"] + low - t["hostID"], s["containerID"] + low - s["hostID"], high - low))
    return sorted(found)


def shift(segs: list[tuple[int, int, int]], image_id: int) -> int:
    for start, to, count in segs:
        if start <= image_id < start + count:
            return to + image_id - start
    return image_id


def mapped_layers(store, layers: list[str], target: dict, *, debug=lambda message: None) -> list[str]:
    """The chowned copies of `layers` (store layer paths, bottom first) for the map `target`
    ({"uidMappings", "gidMappings"} as config.json has it), made now where missing."""
    key = map_key(target)
    folder = os.path.join(store.root, "mapped", key)
    wanted = [os.path.join(folder, os.path.basename(layer)) for layer in layers]
    if all(os.path.isdir(path) for path in wanted):
        debug(f"keep-id: the layers' copies for map {key} are in the store")
        return wanted
    import contextlib  # only when copying: `rlx run` reuses the copies without these (about 25 ms)
    import time
    from rootless.images import userns
    os.makedirs(folder, mode=0o700, exist_ok=True)
    plan = store.idmap()
    store_maps = userns.plan_to_json(plan)
    uids = segments(store_maps["uidMappings"], target["uidMappings"])
    gids = segments(store_maps["gidMappings"], target["gidMappings"])
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.enter_context(store.lock("store", exclusive=False))  # no prune meanwhile
        for layer in sorted(set(layers)):
            stack.enter_context(store.lock(f"mapped-{key}-{os.path.basename(layer)}"))
        todo = [(layer, store.tmp_path("mapped"), path) for layer, path in zip(layers, wanted)
                if not os.path.isdir(path)]
        todo = list({final: (src, tmp, final) for src, tmp, final in todo}.values())
        if todo:
            userns.run_as_mapped_root(plan, _copy_all, todo, uids, gids)
    debug(f"keep-id: {len(todo)} of {len(layers)} layers copied and chowned for map {key} in "
          f"{time.monotonic() - started:.2f} s")
    return wanted


def _copy_all(todo, uids, gids) -> None:
    """In the store's user namespace: each layer into tmp/, renamed into mapped/ whole."""
    import shutil
    for src, tmp, final in todo:
        try:
            _copy_tree(src, tmp, uids, gids, {})
            os.rename(tmp, final)
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)


def _copy_tree(src: str, dst: str, uids, gids, links: dict) -> None:
    from rootless.images import flatten
    os.mkdir(dst, 0o700)
    with os.scandir(src) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            target = os.path.join(dst, entry.name)
            if stat.S_ISDIR(st.st_mode):
                _copy_tree(entry.path, target, uids, gids, links)
                continue
            if flatten.copy_entry(entry.path, target, st, links):
                _attributes(entry.path, target, st, uids, gids)
    _attributes(src, dst, os.lstat(src), uids, gids)


def _attributes(src: str, dst: str, st: os.stat_result, uids, gids) -> None:
    os.lchown(dst, shift(uids, st.st_uid), shift(gids, st.st_gid))
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid and setgid
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:  # after chown too: it removes security.capability
        value = os.getxattr(src, name, follow_symlinks=False)
        if name == CAPABILITY:
            value = shift_capability(value, uids)
        try:
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError:
            pass  # trusted.*: not ours to write in a user namespace, as when unpacking
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def shift_capability(value: bytes, uids) -> bytes:
    """A file capability (vfs_cap_data) as this namespace reads it, with its root ID moved like
    an owner (revision 2 means the namespace's root, 0): written back as revision 3, so it
    works where the target map's root runs, as it did where the store's root ran."""
    import struct
    if len(value) < 20:
        return value
    magic = struct.unpack_from("<I", value)[0]
    revision = magic & 0xFF000000
    if revision == 0x02000000:
        root = 0
    elif revision == 0x03000000 and len(value) >= 24:
        root = struct.unpack_from("<I", value, 20)[0]
    else:
        return value
    return struct.pack("<I", 0x03000000 | (magic & 0x00FFFFFF)) + value[4:20] + struct.pack("<I", shift(uids, root))
