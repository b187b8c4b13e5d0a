"""OCI hooks (config.json `hooks`): checking them, and running one with the state on stdin.

Who runs which kind, and when (the spec's "POSIX-platform Hooks"; see rootless.create.protocol):
  prestart, createRuntime  the CLI process (runtime namespaces), during `create`, once the
                           init has made its mounts and waits before pivot_root ("hooks" step)
  createContainer          the container init (container namespaces), right after, still before
                           pivot_root: the path resolves in the runtime's mount view
  startContainer           the container init, after `start` opened exec.fifo and before the
                           exec of the container's process: the path resolves in the container
  poststart                `start` (and `run`) once the init is released; a failure warns
  poststop                 `delete` once the container is stopped, before its state goes; warns

A hook gets exactly its `args` (args[0] is argv[0]; [path] without args) and exactly its `env`;
without `env` (absent or null; `[]` is an empty environment), the environment of whoever runs
it, as with runc: the runtime's for the kinds the CLI process runs, the container process's for
createContainer and startContainer (runc's init runs them with the process's environment in
place, startContainer with HOME already set). It gets the state JSON on stdin, and its own process group, killed on `timeout`.
It runs through fork and exec, not subprocess (a heavy import on the lifecycle path), and the
init imports this module before pivot_root like everything else it uses.
"""

import errno
import os
import select
import _signal as signal  # the C module: `signal` imports enum (about 3 ms)
import time

from rootless import jsonlite as json
from rootless.errors import ConfigError, RootlessError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Kinds that need the init to stop before pivot_root and hear from the CLI process (the state).
INIT_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer")
FILE = "hooks.json"  # in the container's state directory: `start` and `delete` read it
_MAX_OUTPUT = 64 * 1024


class HookError(RootlessError):
    """A hook failed: the message names it and says how."""


def check(hooks: dict) -> None:
    """What the schema cannot say: paths are absolute (the spec extends execv there) and env
    entries have a name. An entry without "=" is passed as NAME= (runc and crun run it; runc
    passes it verbatim); one with no name ("" or "=x") is refused: execve from Python cannot
    pass it."""
    for kind in KINDS:
        for index, hook in enumerate(hooks.get(kind) or ()):
            where = f"config.json: hooks.{kind}[{index}]"
            if not hook["path"].startswith("/"):
                raise ConfigError(f"{where}.path {hook['path']!r} must be an absolute path")
            for item in hook.get("env", ()):
                if not item.partition("=")[0]:
                    raise ConfigError(f"{where}.env: {item!r} has no name (NAME=VALUE)")


def wanted(hooks: dict | None, kinds: tuple[str, ...]) -> bool:
    return bool(hooks) and any(hooks.get(kind) for kind in kinds)


def describe(kind: str, index: int, hook: dict) -> str:
    return f"{kind} hook #{index} ({hook['path']})"


def state_for(record: dict, status: str, pid: int) -> dict:
    """The OCI state a hook reads on stdin."""
    result = {"ociVersion": record.get("ociVersion", ""), "id": record["id"], "status": status,
              "pid": pid, "bundle": record["bundle"]}
    if record.get("annotations"):
        result["annotations"] = record["annotations"]
    return result


def save(state_dir: str, hooks: dict) -> None:
    with open(os.path.join(state_dir, FILE), "w") as f:
        f.write(json.dumps(hooks))


def load(state_dir: str) -> dict:
    """The hooks saved by create, or {} for a container without any."""
    try:
        with open(os.path.join(state_dir, FILE)) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return {}


def run_all(kind: str, hooks: dict | None, state: dict, warn=None, env: dict | None = None) -> None:
    """Run the hooks of one kind in order. The first failure raises HookError, unless `warn` is
    given: then each failure is warned about and the rest still run (poststart, poststop).
    env: what a hook without `env` gets (default: this process's environment)."""
    entries = (hooks or {}).get(kind) or ()
    if not entries:
        return
    data = json.dumps(state).encode()
    for index, hook in enumerate(entries):
        try:
            run_one(describe(kind, index, hook), hook, data, env)
        except HookError as err:
            if warn is None:
                raise
            warn(err.message)


def failure(name: str, status: int, stderr: bytes) -> str:
    """One line: the hook, how it ended, the first line of what it printed on stderr."""
    how = f"exit status {status}" if status >= 0 else f"killed by signal {-status}"
    first = next((line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()), "")
    return f"{name} failed: {how}" + (f": {first}" if first else "")


def run_one(name: str, hook: dict, state_json: bytes, default_env: dict | None = None) -> None:
    path = hook["path"]
    argv = list(hook.get("args") or [path])
    if hook.get("env") is None:
        env = runtime_environment() if default_env is None else default_env
    else:
        env = dict(item.partition("=")[::2] for item in hook["env"])
    timeout = hook.get("timeout")
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    exec_r, exec_w = os.pipe()  # close-on-exec: end of file means the exec worked
    try:
        pid = os.fork()
        if pid == 0:
            _child(path, argv, env, stdin_r, out_w, err_w, exec_w)
        for fd in (stdin_r, out_w, err_w, exec_w):
            os.close(fd)
        stdin_r = out_w = err_w = exec_w = -1
        exec_error = _read_all(exec_r)
        if exec_error:
            _reap(pid)
            code = int(exec_error) if exec_error.isdigit() else errno.ENOEXEC
            raise HookError(f"{name}: exec {path}: {os.strerror(code)}")
        stdin_w, owned = -1, stdin_w  # _supervise closes it once the state is written
        status, stderr = _supervise(name, pid, timeout, owned, out_r, err_r, state_json)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w, err_r, err_w, exec_r, exec_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
    if status != 0:
        raise HookError(failure(name, status, stderr))


def runtime_environment() -> dict:
    """This process's environment as its caller gave it. Python's start-up coerces a C locale to
    C.UTF-8 and says so in the environment (PEP 538): a hook of runc's would not see that
    LC_CTYPE, so it goes, unless the caller's locale settings show it was the caller's own."""
    env = dict(os.environ)
    if env.get("LC_CTYPE") == "C.UTF-8" and not env.get("LC_ALL") and env.get("LANG", "C") in ("C", "POSIX") \
            and env.get("PYTHONCOERCECLOCALE") != "0":
        del env["LC_CTYPE"]
    return env


def _child(path: str, argv: list[str], env: dict, stdin_r: int, out_w: int, err_w: int, exec_w: int) -> None:
    """Never returns. Its own process group (a timeout kills what it started too), the default
    signal dispositions Python changed, stdio on the pipes and no other fd but exec_w."""
    try:
        os.setpgid(0, 0)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        # exec_w out of the way of 0-2 first, then stdio onto the pipes.
        exec_w = os.dup(exec_w) if exec_w <= 2 else exec_w
        os.set_inheritable(exec_w, False)
        for target, fd in ((0, stdin_r), (1, out_w), (2, err_w)):
            os.dup2(fd, target)
        os.closerange(3, exec_w)
        os.closerange(exec_w + 1, 1 << 20)
        os.execve(path, argv, env)
    except OSError as err:
        code = err.errno or errno.ENOEXEC
    except BaseException:
        code = errno.ENOEXEC
    try:
        os.write(exec_w, str(code).encode())
    finally:
        os._exit(127)


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            return data
        data += chunk


def _reap(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return -signal.SIGKILL
        return os.waitstatus_to_exitcode(status)


def _supervise(name: str, pid: int, timeout: int | None, stdin_w: int, out_r: int, err_r: int,
               state_json: bytes) -> tuple[int, bytes]:
    """Feed stdin, collect output, and wait for the hook (killing its group on timeout).
    Returns its exit code (negative: the signal) and its stderr."""
    pidfd = os.pidfd_open(pid)
    try:
        deadline = time.monotonic() + timeout if timeout else None
        outputs = {out_r: bytearray(), err_r: bytearray()}
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        for fd in outputs:
            poller.register(fd, select.POLLIN)
        pending = memoryview(state_json)
        os.set_blocking(stdin_w, False)
        poller.register(stdin_w, select.POLLOUT)
        exited = False
        while not exited:
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            events = poller.poll(wait_ms)
            if not events and deadline is not None and time.monotonic() >= deadline:
                _kill_group(pid)
                _reap(pid)
                raise HookError(f"{name} failed: timed out after {timeout} s and was killed")
            for fd, event in events:
                if fd == pidfd:
                    exited = True
                elif fd == stdin_w:
                    try:
                        pending = pending[os.write(stdin_w, pending):]
                    except BlockingIOError:
                        pass
                    except BrokenPipeError:  # the hook does not read its stdin: fine
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(stdin_w)
                        os.close(stdin_w)
                        stdin_w = -1
                elif not _drain(fd, outputs[fd]):
                    poller.unregister(fd)
        # The hook is gone; what it wrote is in the pipes unless a child of its still holds them.
        for fd, buffer in outputs.items():
            os.set_blocking(fd, False)
            _drain(fd, buffer)
        _kill_group(pid)  # what it left running in its group goes with it
        return _reap(pid), bytes(outputs[err_r])
    finally:
        os.close(pidfd)
        if stdin_w >= 0:
            os.close(stdin_w)


def _drain(fd: int, buffer: bytearray) -> bool:
    """Read what is there; False at end of file. Keeps the first _MAX_OUTPUT bytes."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except InterruptedError:
            continue
        if not chunk:
            return False
        if len(buffer) < _MAX_OUTPUT:
            buffer += chunk[:_MAX_OUTPUT - len(buffer)]
        if not os.get_blocking(fd):
            continue
        return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
