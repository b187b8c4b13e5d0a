"""The containers seccomp format made into OCI linux.seccomp (rootless.rlx.seccomp_profile), one
rule at a time, and how `rlx run`'s --security-opt chooses the profile (rootless.rlx.prepare)."""

import json
import os
from pathlib import Path

import pytest

from rootless.errors import UsageError
from rootless.rlx import prepare, seccomp_profile
from rootless.rlx.runconfig import PODMAN_CAPS
from rootless.rlx.seccomp_profile import convert, is_containers_format, kernel_version

ARCH_MAP = [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}]


def profile(*groups: dict, **top) -> dict:
    return {"defaultAction": "SCMP_ACT_ERRNO", **top,
            "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {},
                          "excludes": {}, **group} for group in groups]}


def kept(result: dict | None) -> list[list[str]]:
    return [group["names"] for group in (result or {}).get("syscalls", [])]


def test_groups_with_conditions_or_an_arch_map_are_the_containers_format() -> None:
    assert is_containers_format({"archMap": [], "syscalls": []})
    assert is_containers_format({"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {}}]})
    assert is_containers_format({"syscalls": [{"name": "a", "action": "SCMP_ACT_ALLOW"}]})
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    assert not is_containers_format(oci)
    assert seccomp_profile.for_container(oci, []) is oci, "an OCI LinuxSeccomp is used as it is"


def test_includes_caps_needs_every_one_and_excludes_caps_any_one() -> None:
    p = profile({"names": ["both"], "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]}},
                {"names": ["unless-either"], "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]}})
    assert kept(convert(p, ["CAP_SYS_ADMIN"], "amd64", "6.1.0")) == []
    assert kept(convert(p, [], "amd64", "6.1.0")) == [["unless-either"]]
    assert kept(convert(p, ["CAP_SYS_PTRACE", "CAP_SYS_ADMIN"], "amd64", "6.1.0")) == [["both"]]


def test_includes_and_excludes_arches_name_the_native_architecture() -> None:
    p = profile({"names": ["on-x86-64"], "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["not-on-arm64"], "excludes": {"arches": ["arm64"]}},
                {"names": ["only-x32"], "includes": {"arches": ["x32"]}})
    assert kept(convert(p, [], "amd64", "6.1")) == [["on-x86-64"], ["not-on-arm64"]]
    assert kept(convert(p, [], "arm64", "6.1")) == []
    assert seccomp_profile.native_arch("x86_64") == "amd64" and seccomp_profile.native_arch("aarch64") == "arm64"


def test_min_kernel_compares_version_and_major_revision_only() -> None:
    p = profile({"names": ["from-5.8"], "includes": {"minKernel": "5.8"}},
                {"names": ["before-5.8"], "excludes": {"minKernel": "5.8"}})
    assert kept(convert(p, [], "amd64", "5.8.0-rc3")) == [["from-5.8"]]
    assert kept(convert(p, [], "amd64", "6.1.0-13-amd64")) == [["from-5.8"]]
    assert kept(convert(p, [], "amd64", "5.7.19")) == [["before-5.8"]]
    assert kept(convert(p, [], "amd64", "4.19-1-amd64")) == [["before-5.8"]]
    assert kernel_version("3.12-rc5") == kernel_version("3.12.25-gentoo") == (3, 12)
    with pytest.raises(UsageError, match="kernel version"):
        convert(profile({"names": ["x"], "includes": {"minKernel": "new"}}), [], "amd64", "6.1.0")
    assert kept(convert(profile({"names": ["x"]}), [], "amd64", "odd")) == [["x"]], "read only for a minKernel"


def test_arch_map_gives_the_native_entry_and_its_sub_architectures() -> None:
    p = profile(archMap=ARCH_MAP)
    assert convert(p, [], "amd64", "6.1")["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert convert(p, [], "arm64", "6.1")["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "architectures" not in convert(p, [], "ppc64le", "6.1"), "containers/common maps no ppc64le entry"
    assert convert(profile(architectures=["SCMP_ARCH_X86"]), [], "amd64", "6.1")["architectures"] == ["SCMP_ARCH_X86"]
    with pytest.raises(UsageError, match="archMap"):
        convert(profile(archMap=ARCH_MAP, architectures=["SCMP_ARCH_X86"]), [], "amd64", "6.1")


def test_errno_returns_are_copied_and_left_out_when_missing() -> None:
    p = profile({"names": ["enosys"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "errno": "ENOSYS"},
                {"names": ["eperm"], "action": "SCMP_ACT_ERRNO", "errno": "ENOSYS"},
                defaultErrnoRet=1, defaultErrno="EPERM")
    result = convert(p, [], "amd64", "6.1")
    assert result["defaultErrnoRet"] == 1
    assert result["syscalls"] == [{"names": ["enosys"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                                  {"names": ["eperm"], "action": "SCMP_ACT_ERRNO"}], \
        "the errno names are not read (containers/common does not): the runtime's default, EPERM"
    assert "defaultErrnoRet" not in convert(profile(), [], "amd64", "6.1")


def test_args_keep_value_two_only_when_set() -> None:
    p = profile({"names": ["personality"], "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "args": [{"index": 1, "value": 7, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["none"], "args": None})
    result = convert(p, [], "amd64", "6.1")["syscalls"]
    assert result[0]["args"] == [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
    assert result[1]["args"] == [{"index": 1, "value": 7, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]
    assert "args" not in result[2]


def test_name_becomes_names_and_both_are_refused() -> None:
    assert convert({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"}]},
                   [], "amd64", "6.1")["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    with pytest.raises(UsageError, match="'name' and 'names'"):
        convert({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "x"}]},
                [], "amd64", "6.1")


def test_a_profile_without_default_action_or_groups_is_no_filter() -> None:
    assert convert({"archMap": ARCH_MAP}, [], "amd64", "6.1") is None
    assert seccomp_profile.for_container({"archMap": ARCH_MAP, "syscalls": []}, []) is None


PODMAN_FILE = Path("/usr/share/containers/seccomp.json")


@pytest.mark.skipif(not PODMAN_FILE.exists(), reason="podman's seccomp.json is missing (golang-github-containers-common)")
def test_podmans_profile_for_podmans_capabilities() -> None:
    """podman's file for podman's default capabilities on amd64 (tests/functional/
    test_rlx_seccomp.py compares it with what podman itself writes): keys in the spec's order,
    and the same dict on every call, so the runtime's filter cache finds it."""
    source = json.loads(PODMAN_FILE.read_text())
    result = convert(source, PODMAN_CAPS, "amd64", "6.1.0-13-amd64")
    assert repr(result) == repr(convert(json.loads(PODMAN_FILE.read_text()), list(reversed(PODMAN_CAPS)), "amd64",
                                        "6.1.0-13-amd64"))
    assert list(result) == ["defaultAction", "defaultErrnoRet", "architectures", "syscalls"]
    names = [name for group in result["syscalls"] for name in group["names"]]
    assert "arch_prctl" in names and "sync_file_range2" not in names and "s390_runtime_instr" not in names
    sethostname = [g for g in result["syscalls"] if "sethostname" in g["names"]]
    assert [g["action"] for g in sethostname] == ["SCMP_ACT_ERRNO"], "no CAP_SYS_ADMIN: refused"
    admin = convert(source, PODMAN_CAPS + ["CAP_SYS_ADMIN"], "amd64", "6.1")
    assert [g["action"] for g in admin["syscalls"] if "sethostname" in g["names"]] == ["SCMP_ACT_ALLOW"]


def test_default_profile_first_file_found_else_none_said_under_debug(tmp_path: Path) -> None:
    said: list[str] = []
    override, shipped = tmp_path / "etc.json", tmp_path / "usr.json"
    paths, env = (str(override), str(shipped)), {"CONTAINERS_CONF": str(tmp_path / "no.conf")}
    assert seccomp_profile.default_profile(said.append, paths, env) is None
    assert len(said) == 1 and "runs without one" in said[0]
    shipped.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert seccomp_profile.default_profile(said.append, paths, env) == {"defaultAction": "SCMP_ACT_ALLOW"}
    override.write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    assert seccomp_profile.default_profile(said.append, paths, env)["defaultAction"] == "SCMP_ACT_LOG"
    override.write_text("{")
    with pytest.raises(UsageError, match="seccomp=unconfined"):
        seccomp_profile.default_profile(said.append, paths, env)


def test_containers_conf_seccomp_profile_wins_last_file_first(tmp_path: Path) -> None:
    """podman's containers.conf `seccomp_profile`: a path, `unconfined`, or unset (the default
    files); a later file overrides an earlier one; a commented key is not read."""
    system, user = tmp_path / "system.conf", tmp_path / "user.conf"
    custom = tmp_path / "custom.json"
    custom.write_text('{"defaultAction": "SCMP_ACT_TRAP"}')
    system.write_text(f'[containers]\nseccomp_profile = "{custom}"\n')
    user.write_text('[containers]\n# seccomp_profile = "unconfined"\n')
    assert seccomp_profile.configured([str(system), str(user), str(tmp_path / "missing.conf")]) == (str(system), str(custom))
    said: list[str] = []
    env = {"CONTAINERS_CONF": str(system)}
    assert seccomp_profile.default_profile(said.append, (), env) == {"defaultAction": "SCMP_ACT_TRAP"}
    user.write_text('[engine]\nx = 1\n[containers]\n  seccomp_profile = "unconfined"\n')
    assert seccomp_profile.configured([str(system), str(user)]) == (str(user), "unconfined")
    assert seccomp_profile.default_profile(said.append, (), {"CONTAINERS_CONF": str(user)}) is None
    assert "unconfined" in said[-1]
    user.write_text('[containers]\nseccomp_profile = "/nonexistent/p.json"\n')
    with pytest.raises(UsageError, match="user.conf: seccomp_profile /nonexistent/p.json"):
        seccomp_profile.default_profile(said.append, (), {"CONTAINERS_CONF": str(user)})
    assert seccomp_profile.conf_files({"CONTAINERS_CONF": str(user)}) == [str(user)], "CONTAINERS_CONF alone"
    home = tmp_path / "home"
    (home / "containers" / "containers.conf.d").mkdir(parents=True)
    (home / "containers" / "containers.conf.d" / "b.conf").write_text("")
    (home / "containers" / "containers.conf.d" / "a.conf").write_text("")
    files = seccomp_profile.conf_files({"XDG_CONFIG_HOME": str(home)})
    assert files[:2] == ["/usr/share/containers/containers.conf", "/etc/containers/containers.conf"]
    if os.geteuid() != 0:
        assert files[-3:] == [str(home / "containers" / n) for n in ("containers.conf", "containers.conf.d/a.conf",
                                                                      "containers.conf.d/b.conf")]
    else:
        assert str(home) not in " ".join(files), "root's podman reads no user file"


def test_security_opt_chooses_default_unconfined_or_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(seccomp_profile, "default_profile", lambda debug: {"defaultAction": "SCMP_ACT_LOG"})
    file = tmp_path / "p.json"
    file.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}')
    quiet = lambda message: None  # noqa: E731
    assert prepare._seccomp([], quiet) == {"defaultAction": "SCMP_ACT_LOG"}
    assert prepare._seccomp(["no-new-privileges"], quiet) == {"defaultAction": "SCMP_ACT_LOG"}
    assert prepare._seccomp(["seccomp=unconfined"], quiet) is None
    assert prepare._seccomp([f"seccomp={file}"], quiet)["defaultAction"] == "SCMP_ACT_ALLOW"
    assert prepare._seccomp([f"seccomp={file}", "seccomp=unconfined"], quiet) is None, "the last one wins"
    for bad, words in (([f"seccomp={tmp_path}/missing"], "No such file"), (["apparmor=x"], "supported")):
        with pytest.raises(UsageError, match=words):
            prepare._seccomp(bad, quiet)
    file.write_text("[]")
    with pytest.raises(UsageError, match="JSON object"):
        prepare._seccomp([f"seccomp={file}"], quiet)
    os.unlink(file)
