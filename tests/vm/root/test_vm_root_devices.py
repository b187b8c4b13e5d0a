"""The device filter of a root container (issue 11), as root in the VM, runc beside rootless:
the container's cgroup gets an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program built from
linux.resources.devices, so a node the rules deny cannot be opened (EPERM) even by a root
container that may mknod it, while one they allow can, and the default nodes still work.

Marked vmroot: run by tests/vm/guest/run-tier's second pass, as root (only real root can load
the program)."""

import os
import re
import tempfile
from pathlib import Path

import pytest

from helpers.runtime import RUNC, Runtime
from helpers.users import root_user

pytestmark = pytest.mark.vmroot

ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
            "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
            "CAP_SETFCAP", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_RAWIO"]
# Each node made by the container itself (mknod is allowed for every node, as runc allows it),
# then opened for reading and for writing; the shell prints what open(2) said.
SCRIPT = """
mknod /dev/t-kmsg c 1 11 && mknod /dev/t-fuse c 10 229 && mknod /dev/t-loop b 7 0 || exit 3
for what in 't-kmsg <' 't-kmsg >>' 't-fuse <' 't-loop <' 'null >>' 'zero <'; do
    node=${what% *}; how=${what#* }
    said=$( (eval ": $how /dev/$node") 2>&1 ) && echo "$node $how ok" || echo "$node $how ${said##*: }"
done
"""
RULES = [{"allow": False, "access": "rwm"},
         {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
EXPECTED = ["t-kmsg < ok", "t-kmsg >> Operation not permitted", "t-fuse < Operation not permitted",
            "t-loop < Operation not permitted", "null >> ok", "zero < ok"]


@pytest.fixture(params=["runc", "rootless"])
def root_rt(request, rootless_bin: str, busybox_rootfs: Path, scratch_root: Path):
    binary = RUNC if request.param == "runc" else rootless_bin
    work_dir = Path(tempfile.mkdtemp(prefix=f"devices-{request.param}-", dir=scratch_root))
    os.makedirs("/run/rootless-tests", exist_ok=True)
    state_root = Path(tempfile.mkdtemp(prefix="state-", dir="/run/rootless-tests"))
    rt = Runtime("root", root_user(), binary, state_root, work_dir, busybox_rootfs)
    yield rt
    problems = rt.cleanup()
    assert not problems, problems


def _run(rt: Runtime, rules) -> list[str]:
    container_id = rt.new_id("dev")
    caps = {kind: ALL_CAPS for kind in ("bounding", "effective", "permitted")}
    linux = {"cgroupsPath": f"system.slice:rlxdev:{container_id}"}
    if rules is not None:
        linux["resources"] = {"devices": rules}
    bundle = rt.bundle(["sh", "-c", SCRIPT], process={"capabilities": caps}, linux=linux)
    result = rt.run("--systemd-cgroup", "run", "--bundle", str(bundle), container_id, timeout=300)
    rt.run("delete", "--force", container_id)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout.splitlines()


def test_a_denied_device_cannot_be_opened_and_an_allowed_one_can(root_rt: Runtime) -> None:
    assert _run(root_rt, RULES) == EXPECTED


def test_without_rules_only_the_default_nodes_and_linux_devices_open(root_rt: Runtime) -> None:
    """No rules at all: runc's default allow list (the default nodes, ptys, tun) and nothing else."""
    seen = _run(root_rt, None)
    assert seen == ["t-kmsg < Operation not permitted", "t-kmsg >> Operation not permitted",
                    "t-fuse < Operation not permitted", "t-loop < Operation not permitted", "null >> ok", "zero < ok"]


def test_allow_all_opens_everything_the_driver_has(root_rt: Runtime) -> None:
    """`a rwm` allowed (podman --privileged): nothing is refused by the filter; what a node's
    driver answers (ENXIO for a loop device without a backing file, no such device without a
    fuse module) is not EPERM."""
    seen = _run(root_rt, [{"allow": True, "access": "rwm"}])
    assert seen[0] == "t-kmsg < ok" and seen[1] == "t-kmsg >> ok", seen
    assert not any(re.search("Operation not permitted", line) for line in seen), seen
