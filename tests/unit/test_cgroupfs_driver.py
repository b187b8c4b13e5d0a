"""The cgroupfs driver and the verbs' cgroup operations against a temporary tree with
cgroupfs's semantics (helpers/fake_cgroupfs.py): this build host's controllers are bound to
cgroup v1, which is never written, so the real checks run in the VM tier (tests/vm)."""

from pathlib import Path

import pytest

from helpers.fake_cgroupfs import FakeCgroupfs
from rootless.cgroups import fs, manager, stats
from rootless.errors import RootlessError

USER = "user.slice/user-1000.slice/user@1000.service"
SHELL_SCOPE = f"/{USER}/app.slice/run-u7.scope"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch) -> FakeCgroupfs:
    fake = FakeCgroupfs(tmp_path / "cgroup").install(monkeypatch)
    # As systemd delegates: user@1000.service and below enable every controller, and the
    # caller's shell sits in a scope under app.slice.
    fake.cgroup("user.slice", enabled=("cpu", "cpuset", "io", "memory", "pids"))
    fake.cgroup("user.slice/user-1000.slice", enabled=("cpu", "cpuset", "io", "memory", "pids"))
    fake.cgroup(USER, procs=(), enabled=("cpu", "cpuset", "io", "memory", "pids"))
    fake.cgroup(f"{USER}/app.slice", enabled=("memory", "pids"))
    fake.cgroup(SHELL_SCOPE, procs=(100,))
    (tmp_path / "cgroup" / "user.slice" / "cgroup.subtree_control").write_text("cpu cpuset io memory pids\n")
    return fake


def proc_dir(tmp_path: Path, own: str) -> str:
    (tmp_path / "proc" / "self").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text(f"0::{own}\n")
    return str(tmp_path / "proc")


def config(resources: dict | None = None, cgroups_path: str = "") -> dict:
    linux: dict = {"resources": resources or {}}
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return {"linux": linux}


def make(tree: FakeCgroupfs, tmp_path: Path, resources: dict, cgroups_path: str = "", own: str = SHELL_SCOPE,
         pid: int = 4242) -> tuple[manager.Cgroup, list[str]]:
    proc = proc_dir(tmp_path, own)
    plan = manager.plan(config(resources, cgroups_path), "ctr", "cgroupfs", rootless=True, env={},
                        mount=str(tree.root), proc=proc)
    assert plan.driver == "cgroupfs", plan.reason
    cgroup = manager.Cgroup(plan, "ctr", mount=str(tree.root), proc=proc)
    return cgroup, cgroup.join(pid)


def test_the_container_cgroup_goes_beside_the_caller_s_scope_with_its_limits(tree, tmp_path) -> None:
    cgroup, not_applied = make(tree, tmp_path, {"memory": {"limit": 64 << 20}, "pids": {"limit": 50},
                                                "cpu": {"shares": 512}})
    assert cgroup.path == str(tree.root / USER / "app.slice" / "ctr")
    # app.slice (no processes of its own) got cpu enabled on the way down.
    assert "cpu" in tree.read(f"{USER}/app.slice", "cgroup.subtree_control").split()
    assert tree.read(f"{USER}/app.slice/ctr", "cgroup.procs").split() == ["4242"]
    assert tree.read(f"{USER}/app.slice/ctr", "memory.max").strip() == str(64 << 20)
    assert tree.read(f"{USER}/app.slice/ctr", "pids.max").strip() == "50"
    assert tree.read(f"{USER}/app.slice/ctr", "cpu.weight").strip() == "20"
    assert not_applied == []
    record = {"id": "ctr", "pid": 4242, "cgroup": cgroup.record()}
    assert record["cgroup"] == {"driver": "cgroupfs", "path": cgroup.path, "created": [cgroup.path]}


def test_controllers_not_delegated_are_named(tree, tmp_path) -> None:
    tree.cgroup(f"{USER}/narrow.slice", enabled=())
    (tree.root / USER / "cgroup.subtree_control").write_text("memory pids\n")  # io and cpu not given
    # narrow.slice itself offers what user@ enables; it was made before, so rewrite its offer.
    (tree.root / USER / "narrow.slice" / "cgroup.controllers").write_text("memory pids\n")
    _, not_applied = make(tree, tmp_path, {"memory": {"limit": 1 << 20}, "cpu": {"quota": 1000, "period": 10000},
                                           "blockIO": {"weight": 100}}, cgroups_path=f"/{USER}/narrow.slice/c")
    assert not_applied == ["cpu.quota", "cpu.period", "blockIO.weight"]
    assert tree.read(f"{USER}/narrow.slice/c", "memory.max").strip() == str(1 << 20)


def test_no_internal_process_rule_leaves_the_caller_s_processes_where_they_are(tree, tmp_path) -> None:
    """Below a cgroup that holds processes no controller can be enabled (EBUSY): the container
    gets its cgroup without them and every limit is named; the caller is not moved."""
    tree.cgroup(f"{USER}/busy", procs=(7,), enabled=())
    _, not_applied = make(tree, tmp_path, {"memory": {"limit": 1 << 20}, "pids": {"limit": 5}}, own=f"/{USER}/busy")
    assert not_applied == ["memory.limit", "pids.limit"]
    assert tree.read(f"{USER}/busy", "cgroup.procs").split() == ["7"]
    assert tree.read(f"{USER}/busy/ctr", "cgroup.procs").split() == ["4242"]


def test_in_a_delegated_service_the_runtime_steps_into_a_leaf_and_the_limits_hold(tree, tmp_path) -> None:
    """A unit of `rootless generate systemd` (Delegate=yes): systemd starts `rootless run` in the
    service's own cgroup. When the only processes there are the runtime and its namespace stage,
    they move to a leaf, so the service's cgroup can enable the controllers for the container's."""
    import os
    service = f"/{USER}/app.slice/container-ctr.service"
    tree.cgroup(service, procs=(os.getpid(), 4242), enabled=())
    cgroup, not_applied = make(tree, tmp_path, {"memory": {"limit": 1 << 20}, "pids": {"limit": 5}}, own=service)
    assert not_applied == [] and cgroup.path == str(tree.root / service.lstrip("/") / "ctr")
    assert tree.read(service, "cgroup.procs").split() == []
    assert tree.read(f"{service}/{fs.RUNTIME_LEAF}", "cgroup.procs").split() == [str(os.getpid())]
    assert tree.read(f"{service}/ctr", "cgroup.procs").split() == ["4242"]
    assert tree.read(f"{service}/ctr", "memory.max").strip() == str(1 << 20)
    assert {"memory", "pids"} <= set(tree.read(service, "cgroup.subtree_control").split())


def test_a_service_cgroup_holding_another_process_is_left_alone(tree, tmp_path) -> None:
    import os
    service = f"/{USER}/app.slice/other.service"
    tree.cgroup(service, procs=(os.getpid(), 4242, 7), enabled=())
    _, not_applied = make(tree, tmp_path, {"pids": {"limit": 5}}, own=service)
    assert not_applied == ["pids.limit"]
    assert sorted(tree.read(service, "cgroup.procs").split()) == sorted([str(os.getpid()), "7"])
    assert not (tree.root / service.lstrip("/") / fs.RUNTIME_LEAF).exists()


def test_io_weight_falls_back_without_bfq(tree, tmp_path) -> None:
    (tree.root / USER / "app.slice" / "cgroup.subtree_control").write_text("io memory pids\n")
    cgroup, not_applied = make(tree, tmp_path, {"blockIO": {"weight": 500}})
    assert not_applied == [] and Path(cgroup.path, "io.weight").read_text().strip() == "4950"


def test_an_existing_cgroup_is_refused_and_a_failed_create_removes_what_it_made(tree, tmp_path) -> None:
    tree.cgroup(f"{USER}/app.slice/ctr")
    with pytest.raises(RootlessError, match="already exists"):
        make(tree, tmp_path, {})
    cgroup, _ = make(tree, tmp_path, {}, cgroups_path="deep/er/ctr2")
    assert cgroup.created == [str(tree.root / USER / "app.slice" / d)
                              for d in ("deep", "deep/er", "deep/er/ctr2")]
    cgroup.remove()  # create failed later: the init is killed, the directories go
    assert tree.killed == [4242] and not (tree.root / USER / "app.slice" / "deep").exists()


def test_plan_without_cgroup_v2_or_delegation(tmp_path, monkeypatch) -> None:
    hybrid = tmp_path / "hybrid"
    hybrid.mkdir()
    plan = manager.plan(config({"pids": {"limit": 1}}), "c", "cgroupfs", rootless=True, env={}, mount=str(hybrid))
    assert plan.driver == "none" and "cgroup v2" in plan.reason
    assert manager.plan(config(), "c", "disabled", rootless=True, env={}).reason == "--cgroup-manager disabled"
    fake = FakeCgroupfs(tmp_path / "v2").install(monkeypatch)
    plan = manager.plan(config(), "c", "systemd", rootless=True, env={}, mount=str(fake.root))
    assert plan.driver == "none" and "no user D-Bus bus" in plan.reason
    monkeypatch.setattr(manager.host, "delegated", lambda path: False)
    plan = manager.plan(config(), "c", "cgroupfs", rootless=True, env={}, mount=str(fake.root),
                        proc=proc_dir(tmp_path, "/session-1.scope"))
    assert plan.driver == "none" and "not delegated" in plan.reason


def test_warning_and_refusal_name_the_limits() -> None:
    assert manager.warning(["memory.limit", "pids.limit"], "no cgroup", []) == \
        "limits not applied: memory.limit, pids.limit (no cgroup)"
    assert manager.warning([], "x", ["memory.disableOOMKiller"]) == \
        "limits not applied: memory.disableOOMKiller (cgroup v2 has no such setting)"
    assert manager.warning([], "x", []) is None
    plan = manager.Plan("none", manager.resources.translate({"memory": {"limit": 5, "disableOOMKiller": True}}),
                        "hybrid host")
    assert manager.check_required(plan, "c", False) == ["memory.limit"]
    with pytest.raises(RootlessError, match=r"cannot create container c: a cgroup is required for memory.limit .*hybrid"):
        manager.check_required(plan, "c", True)


def test_pause_resume_kill_update_destroy(tree, tmp_path) -> None:
    cgroup, _ = make(tree, tmp_path, {"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    record = {"id": "ctr", "pid": 4242, "cgroup": cgroup.record(), "resources": {"memory": {"limit": 100 << 20,
                                                                                          "swap": 200 << 20}}}
    manager.freeze(record, True)
    assert fs.frozen(cgroup.path) and fs.events(cgroup.path)["frozen"] == 1
    manager.freeze(record, False)
    assert not fs.frozen(cgroup.path)
    # update: a new memory limit moves swap with it (OCI's swap is memory+swap).
    merged, not_applied = manager.update(record, {"memory": {"limit": 150 << 20}, "pids": {"limit": 9}})
    assert merged["memory"] == {"limit": 150 << 20, "swap": 200 << 20} and not_applied == []
    assert Path(cgroup.path, "memory.swap.max").read_text().strip() == str(50 << 20)
    assert Path(cgroup.path, "pids.max").read_text().strip() == "9"
    with pytest.raises(Exception, match="below memory.limit"):
        manager.update(record | {"resources": merged}, {"memory": {"limit": 300 << 20}})
    assert sorted(fs.procs(cgroup.path)) == [4242]
    manager.destroy(record)  # what is left is killed first, then the directory goes
    assert tree.killed == [4242] and not Path(cgroup.path).exists()


def test_kill_all_of_a_scope_systemd_collects_once_empty(tree, tmp_path, monkeypatch) -> None:
    # systemd removes a transient scope as soon as its last process is gone: the thaw that
    # follows cgroup.kill finds no directory (seen in the VM tier, `delete --force`).
    cgroup, _ = make(tree, tmp_path, {})
    write = fs.write

    def kill_then_collect(path, name, value):
        write(path, name, value)
        if name == "cgroup.kill":
            tree.rmdir(path)
    monkeypatch.setattr(fs, "write", kill_then_collect)
    fs.kill_all(cgroup.path)
    assert tree.killed == [4242] and not Path(cgroup.path).exists()


def test_kill_all_still_fails_on_a_cgroup_that_is_there(tree, tmp_path, monkeypatch) -> None:
    cgroup, _ = make(tree, tmp_path, {})
    Path(cgroup.path, "cgroup.freeze").unlink()
    with pytest.raises(RootlessError, match="cgroup.freeze"):
        fs.kill_all(cgroup.path)


def test_verbs_without_a_cgroup_say_why() -> None:
    record = {"id": "c", "cgroup": {"driver": "none", "reason": "hybrid host"}}
    with pytest.raises(RootlessError, match=r"cannot pause container c: it has no cgroup of its own \(hybrid host\)"):
        manager.freeze(record, True)
    with pytest.raises(RootlessError, match="cannot update container c: it has no cgroup"):
        manager.update(record, {"pids": {"limit": 1}})


def test_stats_in_runc_s_shape(tree, tmp_path) -> None:
    cgroup, _ = make(tree, tmp_path, {"memory": {"limit": 1 << 30}})
    Path(cgroup.path, "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n"
                                             "nr_throttled 1\nthrottled_usec 20\n")
    Path(cgroup.path, "memory.current").write_text("4096\n")
    Path(cgroup.path, "memory.stat").write_text("anon 1024\nfile 2048\n")
    Path(cgroup.path, "pids.current").write_text("3\n")
    Path(cgroup.path, "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    Path(cgroup.path, "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    data = stats.collect(cgroup.path)
    assert data["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                           "throttling": {"periods": 3, "throttled_periods": 1, "throttled_time": 20000}}
    assert data["memory"]["usage"] == {"limit": 1 << 30, "usage": 4096, "failcnt": 4}
    assert data["memory"]["cache"] == 2048 and data["memory"]["raw"] == {"anon": 1024, "file": 2048}
    assert data["pids"] == {"current": 3}
    assert data["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read", "value": 10},
                                                        {"major": 8, "op": "Write", "value": 20}]
    assert data["intel_rdt"] == {} and data["network_interfaces"] is None
    assert stats.oom_kills(cgroup.path) == 2


@pytest.mark.parametrize("required", [False, True])
def test_a_cgroup_the_kernel_refuses_leaves_the_container_in_the_caller_s(tree, tmp_path, monkeypatch, required) -> None:
    """A systemd service without Delegate=yes looks delegated (the user owns its cgroup), but
    moving a process below it fails (EOPNOTSUPP, seen in the VM tier): the container runs in
    the caller's cgroup, as runc lets it, with every limit named; required, it is an error."""
    import errno

    def refuse(path, pid):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")
    monkeypatch.setattr(fs, "add_process", refuse)
    proc = proc_dir(tmp_path, SHELL_SCOPE)
    plan = manager.plan(config({"pids": {"limit": 50}}), "ctr", "cgroupfs", rootless=True, env={},
                        mount=str(tree.root), proc=proc)
    cgroup = manager.Cgroup(plan, "ctr", required=required, mount=str(tree.root), proc=proc)
    if required:
        with pytest.raises(OSError):
            cgroup.join(4242)
        return
    assert cgroup.join(4242) == ["pids.limit"]
    assert cgroup.record() == {"driver": "none", "path": None,
                               "reason": f"cannot use the cgroup /{USER}/app.slice/ctr: Operation not supported"}
    assert not (tree.root / USER / "app.slice" / "ctr").exists()
