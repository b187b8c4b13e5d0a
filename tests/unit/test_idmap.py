"""idmap: /etc/subuid parsing, the ID-map plan (pure), and writing it (fake proc dir, fake
helpers, and once for real in a new user namespace when run as root)."""

import os

import pytest

from idmap import (IdMapError, IdMapping, IdMapPlan, SubIdRange, apply_idmap_plan, find_helper, plan_idmaps,
                   read_subid_ranges)
from rootless.linux import procfs

SUB = [SubIdRange(100000, 65536)]


def m(c, h, s):
    return {"containerID": c, "hostID": h, "size": s}


def plan(uids=None, gids=None, **facts):
    args = dict(caller_uid=1000, caller_gid=1000, caller_name="alice", subuid=SUB, subgid=SUB,
                have_newuidmap=True, have_newgidmap=True, privileged=False)
    return plan_idmaps(uids, gids, **(args | facts))


def error(uids=None, gids=None, **facts) -> str:
    with pytest.raises(IdMapError) as info:
        plan(uids, gids, **facts)
    assert "\n" not in str(info.value)
    return str(info.value)


# --- /etc/subuid --------------------------------------------------------------------------

def test_subid_matches_name_or_uid_in_order(tmp_path):
    path = tmp_path / "subuid"
    path.write_text("# alice:1:1\n\nbob:300000:10\nalice:100000:65536\n1000:200000:10\n"
                    "alice:5\nalice:x:3\nalice:7:0\nalice:-1:4\nalice:4294967290:10\n alice:400000:2 \n")
    assert read_subid_ranges("alice", 1000, str(path)) == [
        SubIdRange(100000, 65536), SubIdRange(200000, 10), SubIdRange(400000, 2)]
    assert read_subid_ranges(None, 1000, str(path)) == [SubIdRange(200000, 10)]
    assert read_subid_ranges("carol", 1001, str(path)) == []


def test_subid_missing_file_is_no_ranges(tmp_path):
    assert read_subid_ranges("alice", 1000, str(tmp_path / "absent")) == []


def test_records_are_frozen_values():
    r = SubIdRange(1, 2)
    assert r == SubIdRange(start=1, count=2) and hash(r) == hash(SubIdRange(1, 2)) and r != SubIdRange(1, 3)
    assert repr(r) == "SubIdRange(start=1, count=2)"
    with pytest.raises(AttributeError):
        r.start = 5
    with pytest.raises(TypeError):
        SubIdRange(1)


# --- the plan -----------------------------------------------------------------------------

def test_from_oci():
    assert IdMapping.from_oci(m(0, 1000, 1)) == IdMapping(0, 1000, 1)
    with pytest.raises(IdMapError, match="needs containerID"):
        IdMapping.from_oci({"containerID": 0, "size": 1})
    with pytest.raises(IdMapError, match="integers"):
        IdMapping.from_oci(m(0, "1000", 1))


def test_automatic_plan_stacks_subordinate_ranges():
    p = plan(subuid=[SubIdRange(100000, 65536), SubIdRange(300000, 10)])
    assert p.method == "helper" and not p.deny_setgroups and p.warnings == ()
    assert p.uid_mappings == (IdMapping(0, 1000, 1), IdMapping(1, 100000, 65536), IdMapping(65537, 300000, 10))
    assert p.gid_mappings == (IdMapping(0, 1000, 1), IdMapping(1, 100000, 65536))
    assert plan([], []) == p.__class__(p.uid_mappings[:2], p.gid_mappings, "helper", False, ())
    assert "newuidmap/newgidmap" in p.describe() and "1->100000 x65536" in p.describe()


def test_automatic_plan_leaves_out_overlapping_ranges():
    p = plan(subuid=[SubIdRange(100000, 10), SubIdRange(100000, 10), SubIdRange(100005, 10), SubIdRange(999, 5)])
    assert p.uid_mappings == (IdMapping(0, 1000, 1), IdMapping(1, 100000, 10))
    assert len(p.warnings) == 2 and "100005-100014 overlaps" in p.warnings[0] and "999-1003" in p.warnings[1]


@pytest.mark.parametrize("facts, said", [
    ({"subuid": []}, "no /etc/subuid range for alice: only uid 1000 and gid 1000 are mapped (as root); "
                     "add one with usermod --add-subuids 100000-165535 alice"),
    ({"subuid": [], "subgid": []}, "no /etc/subuid or /etc/subgid range for alice"),
    ({"subgid": [], "caller_name": None}, "add a line 1000:100000:65536 to /etc/subgid"),
    ({"have_newuidmap": False}, "newuidmap not found (Debian package uidmap): only uid 1000 and gid 1000"),
    ({"have_newuidmap": False, "have_newgidmap": False}, "newuidmap and newgidmap not found"),
])
def test_automatic_plan_falls_back_to_the_callers_ids(facts, said):
    p = plan(**facts)
    assert p.method == "direct" and p.deny_setgroups
    assert p.uid_mappings == (IdMapping(0, 1000, 1),) and p.gid_mappings == (IdMapping(0, 1000, 1),)
    assert len(p.warnings) == 1 and said in p.warnings[0]
    assert "setgroups deny" in p.describe()


def test_privileged_writes_any_map_directly():
    p = plan([m(0, 500000, 65536)], [m(0, 0, 1)], privileged=True, subuid=[], have_newuidmap=False)
    assert (p.method, p.deny_setgroups, p.uid_mappings) == ("direct", False, (IdMapping(0, 500000, 65536),))
    assert "root needs linux.uidMappings and linux.gidMappings" in error(privileged=True)


def test_one_map_without_the_other():
    assert "has linux.uidMappings but no linux.gidMappings" in error([m(0, 1000, 1)], None)
    assert "has linux.gidMappings but no linux.uidMappings" in error([], [m(0, 1000, 1)], privileged=True)


def test_single_own_id_is_written_directly():
    p = plan([m(0, 1000, 1)], [m(5, 1000, 1)], have_newuidmap=False, have_newgidmap=False)
    assert (p.method, p.deny_setgroups, p.warnings) == ("direct", True, ())


def test_subordinate_maps_use_the_helpers():
    p = plan([m(0, 1000, 1), m(1, 100000, 65536)], [m(0, 1000, 1)])
    assert (p.method, p.deny_setgroups) == ("helper", False)
    said = error([m(0, 1000, 1), m(1, 100000, 65536)], [m(0, 1000, 1)], have_newgidmap=False)
    assert "newgidmap" in said and "newuidmap" not in said and "uidmap" in said


def test_outside_the_callers_ranges():
    said = error([m(0, 200000, 65536)], [m(0, 1000, 1)])
    assert said == ("uidMappings entry {containerID: 0, hostID: 200000, size: 65536} is outside what user alice "
                    "(uid 1000) may map: uid 1000 and /etc/subuid ranges 100000-165535; change the mapping or "
                    "add a range with usermod --add-subuids")
    assert "gid 1000 only (no /etc/subgid range)" in error([m(0, 1000, 1)], [m(0, 1001, 1)], subgid=[])
    assert "what uid 1000 may map" in error([m(0, 1000, 2)], [m(0, 1000, 1)], caller_name=None)


def test_a_mapping_spans_one_allowed_range_only():
    adjacent = [SubIdRange(100000, 10), SubIdRange(100010, 10)]
    assert "outside" in error([m(1, 100005, 10)], [m(0, 1000, 1)], subuid=adjacent)
    assert "outside" in error([m(0, 999, 2)], [m(0, 1000, 1)])         # caller's ID plus its neighbour
    assert "outside" in error([m(0, 165535, 2)], [m(0, 1000, 1)])      # runs past the range's end


@pytest.mark.parametrize("uids, said", [
    ([m(0, 1000, 1), m(0, 100000, 10)], "overlap in container IDs"),
    ([m(0, 100000, 10), m(9, 100020, 5)], "overlap in container IDs"),
    ([m(0, 100000, 10), m(10, 100009, 5)], "overlap in host IDs"),
    ([m(0, 100000, 0)], "size must be at least 1"),
    ([m(-1, 100000, 1)], "outside IDs 0-4294967294"),
    ([m(2**32 - 2, 100000, 2)], "outside IDs 0-4294967294"),
    ([m(0, 100000, 1)] * 341, "at most 340"),
])
def test_shape_errors(uids, said):
    assert said in error(uids, [m(0, 1000, 1)])
    assert said in error(uids, [m(0, 0, 1)], privileged=True)


def test_adjacent_ranges_do_not_overlap():
    assert plan([m(0, 1000, 1), m(1, 100000, 10), m(11, 100010, 5)], [m(0, 1000, 1)]).method == "helper"


# --- writing the maps ---------------------------------------------------------------------

def direct_plan(deny=True):
    return IdMapPlan((IdMapping(0, 1000, 1),), (IdMapping(0, 1000, 1), IdMapping(1, 5, 2)), "direct", deny, ())


@pytest.fixture
def fake_procfs(monkeypatch):
    """A folder standing in for /proc: write_once refuses files that are not on procfs."""
    monkeypatch.setattr(procfs, "require_procfs", lambda fd, path: None)


def fake_proc(tmp_path, pid, names=("setgroups", "uid_map", "gid_map")):
    """The files the kernel makes for a process: the runtime writes them, never creates them."""
    (tmp_path / str(pid)).mkdir()
    for name in names:
        (tmp_path / str(pid) / name).write_text("")


def test_direct_writes_setgroups_then_maps(tmp_path, fake_procfs):
    fake_proc(tmp_path, 42)
    apply_idmap_plan(direct_plan(), 42, proc=str(tmp_path))
    assert (tmp_path / "42/setgroups").read_text() == "deny"
    assert (tmp_path / "42/uid_map").read_text() == "0 1000 1\n"
    assert (tmp_path / "42/gid_map").read_text() == "0 1000 1\n1 5 2\n"


def test_direct_without_setgroups_file(tmp_path, fake_procfs):
    fake_proc(tmp_path, 42, ("uid_map", "gid_map"))  # kernels before 3.19
    apply_idmap_plan(direct_plan(), 42, proc=str(tmp_path))
    assert (tmp_path / "42/uid_map").read_text() == "0 1000 1\n"


def test_direct_errors_name_the_file(tmp_path, fake_procfs):
    with pytest.raises(IdMapError, match=r"^write `.*/42/uid_map`: No such file or directory$"):
        apply_idmap_plan(direct_plan(deny=False), 42, proc=str(tmp_path))
    fake_proc(tmp_path, 42, ("uid_map",))
    (tmp_path / "42/gid_map").mkdir()
    with pytest.raises(IdMapError, match=r"^write `.*/42/gid_map`: Is a directory$"):
        apply_idmap_plan(direct_plan(deny=False), 42, proc=str(tmp_path))


def fake_helper(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def helper_plan():
    return IdMapPlan((IdMapping(0, 1000, 1), IdMapping(1, 100000, 65536)), (IdMapping(0, 1000, 1),), "helper",
                     False, ())


def test_helpers_get_pid_and_triples(tmp_path):
    uid = fake_helper(tmp_path, "newuidmap", f'echo "$@" > {tmp_path}/uid.args')
    gid = fake_helper(tmp_path, "newgidmap", f'echo "$@" > {tmp_path}/gid.args')
    apply_idmap_plan(helper_plan(), 1234, newuidmap=uid, newgidmap=gid)
    assert (tmp_path / "uid.args").read_text() == "1234 0 1000 1 1 100000 65536\n"
    assert (tmp_path / "gid.args").read_text() == "1234 0 1000 1\n"


def test_helper_failure_is_one_line_with_its_stderr(tmp_path):
    uid = fake_helper(tmp_path, "newuidmap", "echo 'newuidmap: write to uid_map failed:' >&2\n"
                                             "echo '  Operation not permitted' >&2\nexit 1")
    gid = fake_helper(tmp_path, "newgidmap", "exit 0")
    with pytest.raises(IdMapError) as info:
        apply_idmap_plan(helper_plan(), 1234, newuidmap=uid, newgidmap=gid)
    assert str(info.value) == (f"{uid} 1234 0 1000 1 1 100000 65536: exit status 1: "
                               "newuidmap: write to uid_map failed:; Operation not permitted")


def test_both_helpers_fail_and_are_reaped(tmp_path):
    uid = fake_helper(tmp_path, "newuidmap", f"echo $$ >> {tmp_path}/pids; exit 3")
    gid = fake_helper(tmp_path, "newgidmap", f"echo $$ >> {tmp_path}/pids; kill -9 $$")
    with pytest.raises(IdMapError) as info:
        apply_idmap_plan(helper_plan(), 7, newuidmap=uid, newgidmap=gid)
    assert str(info.value) == f"{uid} 7 0 1000 1 1 100000 65536: exit status 3; {gid} 7 0 1000 1: killed by signal 9"
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ChildProcessError):  # already reaped
            os.waitpid(pid, os.WNOHANG)


def test_missing_helper(tmp_path):
    gid = fake_helper(tmp_path, "newgidmap", "exit 0")
    with pytest.raises(IdMapError, match=r"^\S+/absent 1 0 1000 1 1 100000 65536: No such file or directory "
                                         r"\(Debian package uidmap\)$"):
        apply_idmap_plan(helper_plan(), 1, newuidmap=str(tmp_path / "absent"), newgidmap=gid)


def test_find_helper(tmp_path, monkeypatch):
    fake = fake_helper(tmp_path, "newuidmap", "exit 0")
    monkeypatch.setenv("PATH", f":{tmp_path}")
    assert find_helper("newuidmap") == fake
    assert find_helper(fake) == fake
    assert find_helper("sh") == "/usr/bin/sh" or find_helper("sh") == "/bin/sh"
    assert find_helper("no-such-helper-anywhere") is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "")
    assert find_helper("newuidmap") in (None, "/usr/bin/newuidmap", "/usr/sbin/newuidmap")  # never ./newuidmap


# --- for real -----------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="writing another process's uid_map directly needs root")
def test_direct_plan_in_a_real_user_namespace():
    import ctypes
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(to_parent_r)
            os.close(to_child_w)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
                os.write(to_parent_w, f"unshare: {os.strerror(ctypes.get_errno())}".encode())
                os._exit(1)
            os.write(to_parent_w, b"ready")
            os.read(to_child_r, 1)  # the parent has written the maps
            with open("/proc/self/uid_map") as f:
                os.write(to_parent_w, f.read().encode())
        finally:
            os._exit(0)
    os.close(to_parent_w)
    os.close(to_child_r)
    try:
        assert os.read(to_parent_r, 100) == b"ready"
        p = plan([m(0, 0, 1)], [m(0, 0, 1)], privileged=True)
        apply_idmap_plan(p, child)
        os.write(to_child_w, b"x")
        seen = os.read(to_parent_r, 4096).decode()
    finally:
        os.close(to_child_w)
        os.close(to_parent_r)
        _, status = os.waitpid(child, 0)
    assert seen.split() == ["0", "0", "1"]
    assert os.waitstatus_to_exitcode(status) == 0


def test_direct_refuses_files_not_on_procfs(tmp_path):
    """A fake /proc (a folder of plain files) gets no ID map written."""
    fake_proc(tmp_path, 42)
    with pytest.raises(IdMapError, match=r"^write `.*/42/setgroups`: not on procfs"):
        apply_idmap_plan(direct_plan(), 42, proc=str(tmp_path))
    assert (tmp_path / "42/setgroups").read_text() == ""
