"""cgroups where nothing is delegated: this build host (cgroup v1 controllers, a hybrid
cgroup2 tree without them) and `--cgroup-manager disabled` anywhere. The container runs
without a cgroup of its own; limits it asks for are named in one warning (in the --log file
when one is given, never in the container's output) or refused when cgroups are required;
pause, update and events say why they cannot. The real drivers are checked in the VM tier
(tests/vm), on a systemd host with cgroup v2."""

import json
import os
from pathlib import Path

import pytest

from helpers.runtime import Runtime
from test_bad_input import assert_one_line_error

LIMITS = {"memory": {"limit": 64 << 20}, "pids": {"limit": 100}, "cpu": {"shares": 512},
          "devices": [{"allow": False, "access": "rwm"}]}
NAMED = "memory.limit, pids.limit, cpu.shares"
HOST_HAS_CGROUP_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
no_cgroup_v2_here = pytest.mark.skipif(HOST_HAS_CGROUP_V2, reason="checks hosts without cgroup v2 (the VM tier "
                                                                   "checks those with it)")


def manager_flags() -> list[str]:
    """Nothing delegated: the host's own state here, forced elsewhere."""
    return [] if not HOST_HAS_CGROUP_V2 else ["--cgroup-manager", "disabled"]


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if "warning" in line]


def test_limits_not_applied_are_named_in_one_warning(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sh", "-c", "echo out; echo err >&2"], linux={"resources": LIMITS})
    container_id = runtime.new_id()
    result = runtime.run(*manager_flags(), "run", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "out\n"
    (warning,) = warnings_in(result.stderr)
    assert warning.startswith("rootless: warning: limits not applied: " + NAMED + " ("), warning
    assert [line for line in result.stderr.splitlines() if line != warning] == ["err"]
    runtime.assert_no_leaks(container_id, bundle=bundle)


def test_with_log_the_warning_goes_to_the_log_only(runtime: Runtime) -> None:
    """Under conmon the runtime's stderr is the container's: with --log nothing else gets it."""
    bundle = runtime.bundle(["sh", "-c", "echo out; echo err >&2"], linux={"resources": LIMITS})
    log = runtime.work_dir / "oci-log"
    container_id = runtime.new_id()
    result = runtime.run(*manager_flags(), "--log-format=json", "--log", log, "run", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    (line,) = log.read_text().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["msg"].startswith(f"limits not applied: {NAMED} (")


def test_no_limits_no_warning(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"], linux={"resources": {"devices": LIMITS["devices"]}})
    result = runtime.run(*manager_flags(), "run", "--bundle", bundle, runtime.new_id())
    assert (result.returncode, result.stderr) == (0, "")


def test_v1_only_fields_are_named_too(runtime: Runtime) -> None:
    bundle = runtime.bundle(["true"], linux={"resources": {"memory": {"disableOOMKiller": True}}})
    result = runtime.run(*manager_flags(), "run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    (warning,) = warnings_in(result.stderr)
    assert "memory.disableOOMKiller (cgroup v2 has no such setting)" in warning


@pytest.mark.parametrize("how", ["annotation", "flag"])
def test_required_cgroups_refuse_and_leave_nothing(runtime: Runtime, how: str) -> None:
    annotations = {"rootless.cgroups": "required"} if how == "annotation" else {}
    flags = ["--cgroups-required"] if how == "flag" else []
    bundle = runtime.bundle(["true"], linux={"resources": LIMITS}, annotations=annotations)
    container_id = runtime.new_id("req")
    result = runtime.run(*manager_flags(), *flags, "create", "--bundle", bundle, container_id)
    assert_one_line_error(result, f"cannot create container {container_id}", NAMED, "required")
    runtime.assert_no_leaks(container_id, bundle=bundle)
    assert runtime.run("list", "-q", check=True).stdout == ""


def test_cgroup_manager_disabled_is_recorded_and_said(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run("--cgroup-manager", "disabled", "create", "--bundle", bundle, container_id, check=True)
    saved = json.loads((runtime.state_dir(container_id) / "state.json").read_text())
    assert saved["cgroup"] == {"driver": "none", "reason": "--cgroup-manager disabled"}
    paused = runtime.run("pause", container_id)  # a later verb reads the driver from the state
    assert_one_line_error(paused, f"cannot pause container {container_id}", "--cgroup-manager disabled")
    runtime.run("delete", "-f", container_id, check=True)


def test_pause_update_events_say_why_they_cannot(runtime: Runtime) -> None:
    bundle = runtime.bundle(["sleep", "600"])
    container_id = runtime.new_id()
    runtime.run(*manager_flags(), "run", "-d", "--bundle", bundle, container_id, check=True)
    pid = runtime.state(container_id)["pid"]
    assert_one_line_error(runtime.run("pause", container_id), f"cannot pause container {container_id}",
                          "no cgroup of its own")
    assert runtime.state(container_id)["status"] == "running"
    assert_one_line_error(runtime.run("resume", container_id), "not paused")
    assert_one_line_error(runtime.run("update", "--memory", "64m", container_id), "no cgroup")
    assert_one_line_error(runtime.run("events", "--stats", container_id), "no cgroup")
    resources = runtime.work_dir / "resources.json"
    resources.write_text('{"memory": {"limit": 67108864, "swap": 134217728}, "cpu": {"shares": 512}}')
    assert_one_line_error(runtime.run("update", "--resources", resources, container_id), "no cgroup")
    # What does not depend on cgroups still works: exec, ps, kill -a.
    assert runtime.run("exec", container_id, "echo", "inside", check=True).stdout == "inside\n"
    assert json.loads(runtime.run("ps", "--format", "json", container_id, check=True).stdout) == [pid]
    runtime.run("kill", "-a", container_id, "KILL", check=True)
    assert runtime.wait_for_status(container_id, "stopped")["status"] == "stopped"
    runtime.run("delete", container_id, check=True)
    runtime.assert_no_leaks(container_id, bundle=bundle, pids=(pid,))


@pytest.mark.parametrize("verb", [["update", "--memory", "1m"], ["update", "-r", "-"], ["pause"], ["resume"],
                                  ["events"], ["events", "--stats"]])
def test_unknown_ids_answer_as_every_verb(runtime: Runtime, verb: list[str]) -> None:
    result = runtime.run(*verb, "no-such-ctr", input="{}")
    assert_one_line_error(result, "container does not exist", "no-such-ctr")  # runc's words


def test_bad_update_values_are_one_line(runtime: Runtime) -> None:
    assert_one_line_error(runtime.run("update", "--memory", "lots", "x"), "--memory")
    assert_one_line_error(runtime.run("update", "-r", "-", "x", input="[1]"), "JSON object")
    assert_one_line_error(runtime.run("events", "--interval", "soon", "x"), "--interval")


@no_cgroup_v2_here
def test_features_says_no_cgroup_here(runtime: Runtime) -> None:
    features = json.loads(runtime.run("features", check=True).stdout)
    assert features["linux"]["cgroup"] == {"v1": False, "v2": False, "systemd": False, "systemdUser": False,
                                           "rdma": False}


@no_cgroup_v2_here
def test_systemd_driver_without_systemd_degrades_the_same_way(runtime: Runtime) -> None:
    """podman passes --systemd-cgroup with a cgroupsPath slice:prefix:name; on a host that has
    neither cgroup v2 nor systemd the container still runs, with the warning."""
    bundle = runtime.bundle(["true"], linux={"resources": LIMITS, "cgroupsPath": "user.slice:libpod:abc"})
    result = runtime.run("--systemd-cgroup", "run", "--bundle", bundle, runtime.new_id())
    assert result.returncode == 0, result.stderr
    (warning,) = warnings_in(result.stderr)
    assert NAMED in warning and "cgroup v2" in warning



KMSG_BIND = {"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["rbind", "nosuid"]}


@pytest.mark.parametrize("rules, warned", [
    ([{"allow": False, "access": "rwm"}], True),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"}], False),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "access": "r"}], True),
])
def test_rootless_names_the_bound_device_nodes_its_rules_deny(rootless_runtime: Runtime, rules, warned) -> None:
    """No device filter without CAP_SYS_ADMIN in the initial user namespace: a host node bound
    in (here /dev/kmsg, c 1:11) stays as open as the host's permissions make it, and a rule
    that denies it is named, once; one the rules allow, or a template's deny-all alone (the
    default nodes are allowed after the rules, as runc allows them), is not."""
    bundle = rootless_runtime.bundle(["true"], linux={"resources": {"devices": rules}},
                                     mounts=_default_mounts(rootless_runtime) + [KMSG_BIND])
    result = rootless_runtime.run(*manager_flags(), "run", "--bundle", bundle, rootless_runtime.new_id())
    assert result.returncode == 0, result.stderr
    if warned:
        (warning,) = warnings_in(result.stderr)
        assert warning.startswith("rootless: warning: linux.resources.devices not enforced: a rootless container "
                                  "cannot have a device filter"), warning
        assert "/dev/kmsg (c 1:11)" in warning and "BPF_PROG_TYPE_CGROUP_DEVICE" in warning
    else:
        assert result.stderr == ""


def test_rootless_refuses_unenforceable_device_rules_when_cgroups_are_required(rootless_runtime: Runtime) -> None:
    bundle = rootless_runtime.bundle(["true"], linux={"resources": {"devices": [{"allow": False, "access": "rwm"}]}},
                                     mounts=_default_mounts(rootless_runtime) + [KMSG_BIND],
                                     annotations={"rootless.cgroups": "required"})
    container_id = rootless_runtime.new_id("req")
    result = rootless_runtime.run(*manager_flags(), "create", "--bundle", bundle, container_id)
    assert_one_line_error(result, f"cannot create container {container_id}: linux.resources.devices deny "
                                  "/dev/kmsg (c 1:11)", "rootless.cgroups=required")
    assert rootless_runtime.run("list", "-q").stdout.split() == []


def _default_mounts(rt: Runtime) -> list[dict]:
    from helpers.bundle import make_config
    return make_config([], rootless=rt.rootless)["mounts"]
