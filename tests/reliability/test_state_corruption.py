"""The state-corruption matrix: state.json truncated, garbled, {}, an array, wrong types, null,
deeply nested, replaced by a directory, unreadable, gone; for every verb one line and never an
internal error; then `delete -f` removes what it can find (the init, the network helper and
its watcher) and the directory."""

import json
import os
import shutil

import pytest

from common import assert_one_line_error, helper_processes, helpers_present, tun_usable, wait_dead


def _truncate(path, record):
    path.write_text(json.dumps(record)[: len(json.dumps(record)) // 2])


def _garble(path, record):
    text = bytearray(json.dumps(record).encode())
    for index in range(0, len(text), 7):
        text[index] = (text[index] * 31 + 17) % 256
    path.write_bytes(bytes(text))


def _directory(path, record):
    path.unlink()
    (path / "inner").mkdir(parents=True)
    (path / "inner" / "file").write_text("x")
    os.chmod(path / "inner", 0)


CORRUPTIONS = {
    "truncated": _truncate,
    "garbled": _garble,
    "empty-object": lambda path, record: path.write_text("{}"),
    "array": lambda path, record: path.write_text(json.dumps([record])),
    "null": lambda path, record: path.write_text("null"),
    "wrong-types": lambda path, record: path.write_text(json.dumps(
        {**record, "pid": str(record["pid"]), "namespaces": [], "network": "x"})),
    "pid-bool": lambda path, record: path.write_text(json.dumps({**record, "pid": True})),
    "deep": lambda path, record: path.write_text('{"pid": ' + "[" * 100000 + "]" * 100000 + "}"),
    "empty-file": lambda path, record: path.write_text(""),
    "directory": _directory,
    "unreadable": lambda path, record: os.chmod(path, 0),
    "gone": lambda path, record: path.unlink(),
}

# Each verb with the arguments it takes; every one must answer in one line.
VERBS = (("state",), ("start",), ("kill", "KILL"), ("exec", "true"), ("ps",), ("delete",), ("run", "-d"))


@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_state(rootless_runtime, corruption, running):
    rt = rootless_runtime
    network = ["--network", "pasta"] if running and tun_usable() and helpers_present()["pasta"] else []
    bundle = rt.bundle(["sleep", "1000"])
    container_id = rt.new_id("corrupt")
    result = rt.run("run" if running else "create", *(["-d"] if running else []), *network,
                    "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    path = rt.state_dir(container_id) / "state.json"
    record = json.loads(path.read_text())
    CORRUPTIONS[corruption](path, record)
    if os.geteuid() == 0 and os.path.lexists(path):  # what the test user's own runtime would have made
        for folder, dirs, files in os.walk(path):
            for name in [folder] + [os.path.join(folder, n) for n in dirs + files]:
                os.chown(name, rt.user.uid, rt.user.gid, follow_symlinks=False)
    for verb in VERBS:
        args = (verb[0], "--bundle", str(bundle), container_id) if verb[0] == "run" else (verb[0], container_id, *verb[1:])
        if verb[0] == "run":
            args = ("run", "-d", "--bundle", str(bundle), container_id)
        result = rt.run(*args)
        assert result.returncode != 0, f"{verb} on a {corruption} state succeeded"
        assert_one_line_error(result, f"{verb[0]} on a {corruption} state")
    listed = rt.run("list")
    assert listed.returncode == 0 and "internal error" not in listed.stderr, listed.stderr
    result = rt.run("delete", "-f", container_id)
    assert result.returncode == 0, result.stderr
    watched = [record["pid"]] + ([record["network"]["helper_pid"], record["network"]["watcher_pid"]]
                                 if "network" in record and "helper_pid" in record["network"] else [])
    assert not wait_dead(watched), f"alive after delete -f: {watched}"
    assert not helper_processes(str(rt.state_root))
    assert not os.path.lexists(rt.state_dir(container_id))
    rt.assert_no_leaks(container_id, bundle=bundle)


def test_state_root_entry_is_a_file(rootless_runtime):
    """ROOT/ID a file, not a directory: one line for every verb, delete -f removes it."""
    rt = rootless_runtime
    container_id = rt.new_id("file")
    path = rt.state_dir(container_id)
    path.write_text("x")
    for verb in VERBS[:-2]:
        result = rt.run(verb[0], container_id, *verb[1:])
        assert result.returncode != 0
        assert_one_line_error(result, verb[0])
    assert rt.run("delete", "-f", container_id).returncode == 0
    assert not os.path.lexists(path)


HOOK_SCRIPT = "#!/bin/sh\ncat > \"$1\"\n"


@pytest.mark.parametrize("lost", ["state", "state+hooks.json", "state+hooks.json+config", "everything"])
def test_delete_force_runs_the_poststop_hooks_from_what_survives(rootless_runtime, lost):
    """state.json garbled: the poststop hooks run from hooks.json, else the saved config.json,
    else the bundle's config.json (its path read from what is left of state.json); with all
    of them lost (state.json gone too), one warning says they were not run, and delete -f
    still removes everything."""
    rt = rootless_runtime
    hook = rt.work_dir / "hook.sh"
    hook.write_text(HOOK_SCRIPT)
    hook.chmod(0o755)
    seen = rt.work_dir / "poststop.json"
    hooks = {"poststop": [{"path": str(hook), "args": ["hook.sh", str(seen)]}]}
    bundle = rt.bundle(["sleep", "1000"], hooks=hooks)
    container_id = rt.new_id("hooks")
    result = rt.run("run", "-d", "--bundle", bundle, container_id)
    assert result.returncode == 0, result.stderr
    folder = rt.state_dir(container_id)
    path = folder / "state.json"
    record = json.loads(path.read_text())
    if lost == "everything":
        path.unlink()
    else:
        # The types are wrong (no record), the text still names the bundle.
        path.write_text(json.dumps({**record, "pid": str(record["pid"]), "namespaces": []}))
    if "hooks.json" in lost or lost == "everything":
        (folder / "hooks.json").unlink()
    if "config" in lost or lost == "everything":
        (folder / "config.json").unlink()
    result = rt.run("delete", "-f", container_id)
    assert result.returncode == 0, result.stderr
    assert not wait_dead([record["pid"]])
    assert not os.path.lexists(folder)
    if lost == "everything":
        assert not seen.exists()
        (warning,) = result.stderr.splitlines()
        assert "poststop hooks, if the container has any, not run" in warning
        assert "the bundle's path was lost with state.json" in warning
    else:
        assert result.stderr == ""
        told = json.loads(seen.read_text())
        assert (told["id"], told["status"], told["bundle"]) == (container_id, "stopped", str(bundle))
