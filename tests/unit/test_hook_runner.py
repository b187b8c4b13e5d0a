"""rootless.process.hooks without containers: checks, messages, the state, and running a hook."""

import json
import os
import time

import pytest

from rootless.process import hooks
from rootless.oci.config import check_semantics
from rootless.errors import ConfigError

STATE = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"}


def _config(hook_config: dict) -> dict:
    return {"root": {"path": "rootfs"}, "process": {"args": ["true"]},
            "linux": {"namespaces": [{"type": "mount"}]}, "hooks": hook_config}


def test_hooks_are_accepted_by_the_config_check() -> None:
    # "C" without "=": runc and crun run it (as C=, here)
    check_semantics(_config({kind: [{"path": "/bin/true", "env": ["A=1", "B=", "C"]}] for kind in hooks.KINDS}))


@pytest.mark.parametrize("hook, needle", [
    ({"path": "bin/true"}, "hooks.poststop[0].path 'bin/true' must be an absolute path"),
    ({"path": "/bin/true", "env": ["=x"]}, "hooks.poststop[0].env: '=x' has no name"),
    ({"path": "/bin/true", "env": [""]}, "has no name"),
])
def test_bad_hooks_are_refused_by_name(hook: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        check_semantics(_config({"poststop": [hook]}))
    assert needle in caught.value.message


def test_wanted() -> None:
    assert not hooks.wanted(None, hooks.INIT_KINDS)
    assert not hooks.wanted({"poststop": [{"path": "/x"}]}, hooks.INIT_KINDS)
    assert hooks.wanted({"startContainer": [{"path": "/x"}]}, hooks.INIT_KINDS)


def test_state_for_has_the_oci_fields() -> None:
    record = {"ociVersion": "1.0.2", "id": "c1", "pid": 7, "bundle": "/b", "rootfs": "/r", "annotations": {"a": "b"}}
    assert hooks.state_for(record, "running", 7) == {"ociVersion": "1.0.2", "id": "c1", "status": "running",
                                                     "pid": 7, "bundle": "/b", "annotations": {"a": "b"}}
    assert "annotations" not in hooks.state_for(dict(record, annotations={}), "stopped", 0)


def test_failure_message_is_one_line() -> None:
    assert hooks.failure("createRuntime hook #0 (/x)", 3, b"\n  first  \nsecond\n") == \
        "createRuntime hook #0 (/x) failed: exit status 3: first"
    assert hooks.failure("h", -9, b"") == "h failed: killed by signal 9"


def test_save_and_load(tmp_path) -> None:
    assert hooks.load(str(tmp_path)) == {}
    saved = {"poststop": [{"path": "/bin/true", "args": ["true"]}]}
    hooks.save(str(tmp_path), saved)
    assert hooks.load(str(tmp_path)) == saved


def test_run_passes_state_args_and_exact_env(tmp_path) -> None:
    out = tmp_path / "out"
    script = f'cat > {out}.state; printf "%s\\n" "$0" "$1" > {out}.args; tr "\\000" "\\n" < /proc/$$/environ > {out}.env'
    hook = {"path": "/bin/sh", "args": ["zero", "-c", script, "first", "second"], "env": ["PATH=/usr/bin:/bin", "K=v w"]}
    hooks.run_all("createRuntime", {"createRuntime": [hook]}, STATE)
    assert json.loads((tmp_path / "out.state").read_text()) == STATE
    assert (tmp_path / "out.args").read_text().splitlines() == ["first", "second"]
    assert sorted((tmp_path / "out.env").read_text().splitlines()) == ["K=v w", "PATH=/usr/bin:/bin"]


def test_run_without_args_uses_the_path_as_argv0(tmp_path) -> None:
    script = tmp_path / "hook"
    script.write_text(f'#!/bin/sh\necho "$0" > {tmp_path}/argv0\n')
    os.chmod(script, 0o755)
    hooks.run_all("poststart", {"poststart": [{"path": str(script)}]}, STATE)
    assert (tmp_path / "argv0").read_text() == f"{script}\n"


def test_a_large_state_does_not_block() -> None:
    big = dict(STATE, annotations={"k": "x" * 300_000})
    hooks.run_all("createRuntime", {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null"]}]}, big)
    # A hook that does not read its stdin is fine too.
    hooks.run_all("createRuntime", {"createRuntime": [{"path": "/bin/true"}]}, big)


def test_failures() -> None:
    with pytest.raises(hooks.HookError, match=r"^createRuntime hook #0 \(/nonexistent\): exec /nonexistent: "
                                               r"No such file or directory$"):
        hooks.run_all("createRuntime", {"createRuntime": [{"path": "/nonexistent"}]}, STATE)
    with pytest.raises(hooks.HookError, match=r"failed: exit status 3: boom$"):
        hooks.run_all("prestart", {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}]},
                      STATE)


def test_timeout_kills_the_hook_and_what_it_started(tmp_path) -> None:
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"sleep 600 & echo $! > {tmp_path}/child; wait"], "timeout": 1}
    started = time.monotonic()
    with pytest.raises(hooks.HookError, match="timed out after 1 s and was killed"):
        hooks.run_all("createRuntime", {"createRuntime": [hook]}, STATE)
    assert time.monotonic() - started < 5
    child = int((tmp_path / "child").read_text())
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or " Z" in open(f"/proc/{child}/stat").read().rsplit(")", 1)[1][:3]


def test_warn_reports_each_failure_and_goes_on(tmp_path) -> None:
    warnings: list[str] = []
    entries = [{"path": "/bin/false"}, {"path": "/bin/sh", "args": ["sh", "-c", f"touch {tmp_path}/ran"]},
               {"path": "/nonexistent"}]
    hooks.run_all("poststop", {"poststop": entries}, STATE, warn=warnings.append)
    assert [w.split(" failed")[0].split(":")[0] for w in warnings] == ["poststop hook #0 (/bin/false)",
                                                                     "poststop hook #2 (/nonexistent)"]
    assert (tmp_path / "ran").exists()
