"""How a case is driven: each scenario takes a Side and a Case, runs the runtime as a client
would, and returns the observation (a dict of plain values, normalized: see
helpers.differential). Every scenario deletes what it created."""

import json
import os
import re
import time
from pathlib import Path

from helpers.bundle import deep_merge
from helpers.differential import PROBE_ARGS, Side, normalize_text, parse_probe


def _config(side: Side, case) -> dict:
    args = case.args if case.args is not None else PROBE_ARGS
    config = side.base_config(args, terminal=case.terminal)
    overrides = case.config(side) if callable(case.config) else case.config
    config = deep_merge(config, overrides)
    if case.edit is not None:
        case.edit(config)
    return config


def _bundle(side: Side, case) -> Path:
    return side.bundle(_config(side, case), private_rootfs=case.private_rootfs, prepare=case.prepare)


def _output(side: Side, case, stdout: str, names: dict[str, str]) -> dict:
    """stdout as sections (probe) or as normalized text, narrowed to case.check."""
    text = normalize_text(stdout, names)
    if case.args is None:
        return narrow(parse_probe(text), case)
    return {"stdout": text}


def _focused(destination: str, focus: tuple[str, ...]) -> bool:
    """Whether a mount's destination is one of `focus` or below one ("/sys$": that one only)."""
    for wanted in focus:
        if wanted.endswith("$"):
            if destination == wanted[:-1]:
                return True
        elif destination == wanted or destination.startswith(wanted.rstrip("/") + "/"):
            return True
    return False


def narrow(sections: dict, case) -> dict:
    """The sections named in case.check; the mount table cut to the destinations under
    case.focus (so that a divergence of the template's own mounts shows in default-mounts
    alone)."""
    if case.check is not None:
        sections = {key: value for key, value in sections.items() if key in case.check}
    if case.focus:
        for key in ("mounts", "mount_order"):
            if key in sections:
                sections[key] = "\n".join(line for line in sections[key].splitlines()
                                          if _focused(line.split(" ", 1)[0], case.focus))
    return sections


def _names(side: Side, container_id: str, bundle: Path) -> dict[str, str]:
    return {container_id: "<ID>", str(bundle): "<BUNDLE>", str(side.runtime.state_root): "<ROOT>",
            str(side.runtime.work_dir): "<WORK>"}


def run(side: Side, case) -> dict:
    """`run [FLAGS] --bundle B ID` in the foreground, stdio through files."""
    bundle = _bundle(side, case)
    container_id = side.new_id()
    # A foreground run that succeeded removed its container: one runtime call less per case.
    result = side.run("run", *case.flags, "--bundle", bundle, container_id, timeout=60)
    if result.returncode != 0:
        side.cleanup_container(container_id)
    seen = {"exit": result.returncode, "stderr_empty": result.stderr == "", "_stderr": result.stderr.strip()[-300:]}
    seen.update(_output(side, case, result.stdout, _names(side, container_id, bundle)))
    return seen


def run_tty(side: Side, case) -> dict:
    """`run` in the foreground with a terminal of the caller's (terminal: true): every byte."""
    bundle = _bundle(side, case)
    container_id = side.new_id()
    status, seen_bytes = side.run_in_terminal("run", *case.flags, "--bundle", bundle, container_id,
                                              typed=case.typed)
    if status != 0:
        side.cleanup_container(container_id)
    text = normalize_text(seen_bytes.decode(errors="replace"), _names(side, container_id, bundle))
    if case.args is None:
        seen = narrow(parse_probe(text), case)
    else:
        seen = {"output": text}
    return {"exit": status, **seen}


def create_start(side: Side, case) -> dict:
    """create (console socket when terminal), state, start, wait; the container's stdout goes
    to a file of the test's (or the console socket)."""
    bundle = _bundle(side, case)
    container_id = side.new_id()
    out_path = side.runtime.work_dir / f"{container_id}.out"
    console = side.console_socket() if case.terminal else None
    extra = ["--console-socket", console.path] if console else []
    seen: dict = {}
    try:
        with open(out_path, "wb") as out:
            created = side.run_with_stdout(out, "create", *case.flags, *extra, "--bundle", bundle, container_id)
        seen["create"] = (created.returncode, created.stderr == "")
        state = side.run("state", container_id)
        seen["status_after_create"] = json.loads(state.stdout)["status"] if state.returncode == 0 else state.returncode
        started = side.run("start", container_id)
        seen["start"] = (started.returncode, started.stderr == "")
        side.wait_stopped(container_id)
        state = side.run("state", container_id)
        seen["status_after_start"] = json.loads(state.stdout)["status"] if state.returncode == 0 else state.returncode
    finally:
        side.cleanup_container(container_id)
    stdout = console.wait().decode(errors="replace") if console else out_path.read_text()
    seen.update(_output(side, case, stdout, _names(side, container_id, bundle)))
    return seen


def run_detached_console(side: Side, case) -> dict:
    """`run -d --console-socket` (terminal: true): the pty master goes to a socket of the
    test's, which reads what the container writes."""
    bundle = _bundle(side, case)
    container_id = side.new_id()
    console = side.console_socket()
    try:
        result = side.run("run", "-d", *case.flags, "--console-socket", console.path, "--bundle", bundle, container_id)
        side.wait_stopped(container_id)
    finally:
        side.cleanup_container(container_id)
    output = console.wait().decode(errors="replace") if result.returncode == 0 else ""
    return {"exit": result.returncode, "stderr_empty": result.stderr == "",
            "output": normalize_text(output, _names(side, container_id, bundle))}


def steps(side: Side, case) -> dict:
    """A sequence of client commands on one container (case.steps): each a tuple of runtime
    arguments in which "ID" stands for the container, "BUNDLE" for its bundle and "WORK" for
    the scratch folder; ("sleep", seconds) waits, ("status",) records the state's status.
    Records each command's exit status, whether stderr was empty, and its normalized stdout
    (through case.normalize when given)."""
    bundle = _bundle(side, case)
    container_id = side.new_id()
    names = _names(side, container_id, bundle)
    seen: dict = {}
    try:
        for index, step in enumerate(case.steps):
            key = f"{index}:{' '.join(step)}"
            if step[0] == "sleep":
                time.sleep(float(step[1]))
                continue
            if step[0] == "status":
                state = side.run("state", container_id)
                seen[key] = json.loads(state.stdout)["status"] if state.returncode == 0 else f"exit {state.returncode}"
                continue
            if step[0] == "settle":
                seen[key] = side.runtime.wait_for_status(container_id, "stopped", timeout=2)["status"]
                continue
            if step[0] == "wait-stopped":
                side.wait_stopped(container_id)
                continue
            if step[0] == "pid-file":  # a file the runtime wrote: does it hold a PID?
                path = Path(step[1].replace("WORK/", str(side.runtime.work_dir) + "/"))
                text = path.read_text() if path.exists() else "<none>"
                seen[key] = "pid" if text.strip().isdigit() and int(text) > 0 else text
                continue
            args = [str(bundle) if a == "BUNDLE" else container_id if a == "ID" else
                    str(side.runtime.work_dir) if a == "WORK" else a for a in step]
            args = [a.replace("WORK/", str(side.runtime.work_dir) + "/") for a in args]
            result = side.run(*args, timeout=60)
            stdout = normalize_text(result.stdout, names)
            if case.normalize is not None:
                stdout = case.normalize(stdout, side)
            seen[key] = (result.returncode, result.stderr == "", stdout)
            seen[f"_{key}"] = result.stderr.strip()[-300:]
    finally:
        side.cleanup_container(container_id)
    return seen


def spec(side: Side, case) -> dict:
    """`spec [FLAGS]` in an empty folder: the exit status and config.json as JSON."""
    folder = side.runtime.work_dir / f"spec-{side.new_id()}"
    folder.mkdir()
    os.chown(folder, side.user.uid, side.user.gid)
    if case.steps:  # a config.json already there
        (folder / "config.json").write_text("{}")
        os.chown(folder / "config.json", side.user.uid, side.user.gid)
    result = side.run("spec", *case.flags, cwd=folder)
    text = (folder / "config.json").read_text()
    seen = {"exit": result.returncode, "stderr_empty": result.stderr == ""}
    try:
        config = json.loads(text)
    except ValueError:
        config = text
    if case.normalize is not None:
        config = case.normalize(config, side)
    seen["config"] = config
    return seen


def features(side: Side, case) -> dict:
    result = side.run("features")
    data = json.loads(result.stdout)
    return {"exit": result.returncode, **case.normalize(data, side)}


def hooks(side: Side, case) -> dict:
    """A run whose hooks write what they saw into WORK/hooks.out (case.config names it)."""
    out = side.runtime.work_dir / "hooks.out"
    out.unlink(missing_ok=True)
    seen = run(side, case)
    text = out.read_text() if out.exists() else "<no hook ran>"
    seen["hooks"] = normalize_text(text, {str(side.runtime.work_dir): "<WORK>"})
    if case.normalize is not None:
        seen["hooks"] = case.normalize(seen["hooks"], side)
    return seen


def exec_in(side: Side, case) -> dict:
    """A container running `sleep 600` (run -d, with a console socket when case.terminal); then
    `exec [case.flags] ID case.args...`, with a terminal of the caller's when "-t" is among the
    flags but "CONSOLE" is not (it stands for a console socket of the test's, whose output is
    recorded once the process has exited)."""
    config_case = type(case)(case.name, config=case.config, args=["sleep", "600"], private_rootfs=case.private_rootfs,
                             terminal=case.terminal)
    bundle = _bundle(side, config_case)
    container_id = side.new_id()
    names = _names(side, container_id, bundle)
    flags = [a.replace("WORK/", str(side.runtime.work_dir) + "/") for a in case.flags]
    container_console = side.console_socket() if case.terminal else None
    run_flags = ["--console-socket", str(container_console.path)] if container_console else []
    exec_console = side.console_socket() if "CONSOLE" in flags else None
    if exec_console is not None:
        flags = [str(exec_console.path) if a == "CONSOLE" else a for a in flags]
    if case.process is not None:
        path = side.runtime.work_dir / f"{container_id}.process.json"
        process = json.loads(json.dumps(case.process))
        path.write_text(json.dumps(process))
        flags += ["--process", str(path)]
    args = case.exec_args if case.exec_args is not None else PROBE_ARGS
    console_output = None
    try:
        side.run("run", "-d", *run_flags, "--bundle", bundle, container_id, check=True)
        if ("-t" in flags or "--tty" in flags) and exec_console is None:
            status, seen_bytes = side.run_in_terminal("exec", *flags, container_id, *args)
            stdout, stderr_empty = seen_bytes.decode(errors="replace"), None
        else:
            result = side.run("exec", *flags, container_id, *args, timeout=60)
            status, stdout, stderr_empty = result.returncode, result.stdout, result.stderr == ""
            stderr = result.stderr.strip()[-300:]
            if exec_console is not None:
                console_output = exec_console.wait().decode(errors="replace") if status == 0 else ""
            elif "-d" in flags or "--detach" in flags:
                time.sleep(0.3)
    finally:
        side.cleanup_container(container_id)
        for console in (container_console, exec_console):
            if console is not None:
                console.wait(timeout=5)
    seen = {"exit": status, "stderr_empty": stderr_empty}
    if console_output is not None:
        seen["console"] = normalize_text(console_output, names)
    if stderr_empty is False:
        seen["_stderr"] = stderr
    text = normalize_text(stdout, names)
    if case.exec_args is None and case.process is None and "-d" not in flags:
        seen.update(narrow(parse_probe(text), case))
    else:
        seen["stdout"] = text
    return seen


def pids_as_count(text: str, side: Side) -> str:
    """ps/list output with numbers that are host PIDs or times replaced."""
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<TIME>", text)
    text = re.sub(r"\b\d{2,}\b", "N", text)
    return re.sub(r"[ \t]+", " ", text)


def state_json(text: str) -> object:
    """`state` or `list -f json` output with what differs by nature replaced: PIDs, creation
    times, the runtime's OCI version."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    for entry in data if isinstance(data, list) else [data]:
        if isinstance(entry, dict):
            if isinstance(entry.get("pid"), int) and entry["pid"] > 0:
                entry["pid"] = "<PID>"
            for key in ("created", "ociVersion"):
                if key in entry:
                    entry[key] = f"<{key}>"
    return data
