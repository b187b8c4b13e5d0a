"""Work on the store's files as root of a user namespace that has the containers' ID mapping.

A rootless store holds files owned by the caller's subordinate IDs: unpacking a layer (chown to
UID 33 of the image), copying it into a bundle and removing it all need root of a user
namespace whose map is the one containers get (the caller as 0, the /etc/subuid range from 1:
idmap's automatic plan, podman's rootless default). So UID 33 in an image is subordinate UID
33 on disk, and 33 again inside a container that uses the same map.

Protocol (one pipe each way): the forked child unshares CLONE_NEWUSER and writes "u"; the
parent maps it with idmap (newuidmap/newgidmap) and writes "m"; the child becomes UID 0,
runs the function and writes back a pickled ("ok", result) or ("error", message), then exits.
The child is single-threaded by construction (a fresh fork), as unshare(CLONE_NEWUSER) needs:
callers finish their download threads before calling in.

Real root needs no namespace: the function runs in-process, and the map is the identity.
"""

import os
import pickle
import signal
import traceback

from idmap.apply import apply_idmap_plan, find_helper
from idmap.plan import IdMapping, IdMapPlan, plan_idmaps
from idmap.subid import read_subid_ranges
from rootless import paths
from rootless.errors import RootlessError
from rootless.images.digest import ImageError
from rootless.linux import syscalls


def caller_plan(subuid: str = paths.SUBUID, subgid: str = paths.SUBGID) -> IdMapPlan:
    """The mapping a rootless container of this caller gets when config.json names none."""
    import pwd
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    return plan_idmaps(None, None, caller_uid=uid, caller_gid=gid, caller_name=name,
                       subuid=read_subid_ranges(name, uid, subuid), subgid=read_subid_ranges(name, uid, subgid),
                       have_newuidmap=find_helper("newuidmap") is not None,
                       have_newgidmap=find_helper("newgidmap") is not None, privileged=False)


def plan_to_json(plan: IdMapPlan) -> dict:
    def entries(mappings):
        return [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size} for m in mappings]
    return {"uidMappings": entries(plan.uid_mappings), "gidMappings": entries(plan.gid_mappings)}


def plan_from_json(data: dict) -> IdMapPlan:
    uids = tuple(IdMapping.from_oci(d) for d in data["uidMappings"])
    gids = tuple(IdMapping.from_oci(d) for d in data["gidMappings"])
    single = len(uids) == 1 and len(gids) == 1 and uids[0].size == 1 and gids[0].size == 1
    return IdMapPlan(uids, gids, "direct" if single else "helper", single, ())


def run_as_mapped_root(plan: IdMapPlan | None, func, *args, unshare_mount: bool = False):
    """func(*args) as root of a new user namespace mapped by `plan` (None: in-process, for real
    root). Its RootlessError comes back as an ImageError with the same message."""
    if plan is None:
        return func(*args)
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(to_child_w)
            os.close(from_child_r)
            status = _child(to_child_r, from_child_w, unshare_mount, func, args)
        finally:
            os._exit(status)
    os.close(to_child_r)
    os.close(from_child_w)
    try:
        first = os.read(from_child_r, 1)
        if first != b"u":
            kind, value = _read_result(from_child_r) if first == b"e" else ("error", "")
            raise ImageError(value or "the user-namespace helper died before it was mapped")
        apply_idmap_plan(plan, pid)
        os.write(to_child_w, b"m")
        kind, value = _read_result(from_child_r)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(to_child_w)
        os.close(from_child_r)
        os.waitpid(pid, 0)
    if kind == "error":
        raise ImageError(value)
    return value


def _child(read_fd: int, write_fd: int, unshare_mount: bool, func, args) -> int:
    announced = False
    try:
        syscalls.set_pdeathsig(signal.SIGKILL)  # a killed pull takes its unpacker with it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        syscalls.unshare(syscalls.CLONE_NEWUSER | (syscalls.CLONE_NEWNS if unshare_mount else 0))
        os.write(write_fd, b"u")
        announced = True
        if os.read(read_fd, 1) != b"m":
            return 1
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        try:
            os.setgroups([])
        except OSError:
            pass  # setgroups denied (a single-ID map): no supplementary groups to drop anyway
        os.umask(0o022)
        result = ("ok", func(*args))
    except RootlessError as err:
        result = ("error", err.message)
    except BaseException as err:  # noqa: BLE001 - any failure must reach the parent as a line
        last = traceback.extract_tb(err.__traceback__)[-1]
        result = ("error", f"internal error: {type(err).__name__}: {err} ({os.path.basename(last.filename)}:"
                           f"{last.lineno})")
    data = pickle.dumps(result) if announced else b"e" + pickle.dumps(result)
    view = memoryview(data)
    while view:
        view = view[os.write(write_fd, view):]
    return 0


def _read_result(fd: int):
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    if not chunks:
        raise ImageError("the user-namespace helper died without an answer (killed?)")
    return pickle.loads(b"".join(chunks))
