"""Errors and warnings for the user: an error is one line on stderr and one in the --log file;
a warning is one line in the --log file when one is given, else on stderr.

runc's contract, which podman relies on: with `--log FILE --log-format json` the file gets one
JSON object per message ({"level","msg","time"}); podman shows that message when the file holds
exactly one line and falls back to stderr otherwise.
"""

from rootless import jsonlite as json
import os
import sys
import time


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _format(level: str, message: str, log_format: str) -> str:
    if log_format == "json":
        return json.dumps({"level": level, "msg": message, "time": _timestamp()})
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'time="{_timestamp()}" level={level} msg="{escaped}"'


def emit(level: str, message: str, *, log: str | None, log_format: str) -> None:
    """Errors go to stderr and the log; warnings to the log alone when there is one (runc's):
    under conmon the runtime's stderr during `create` is the container's own stderr."""
    message = " ".join(message.splitlines()) or "unknown error"
    if log and level != "error":
        try:
            _append(log, _format(level, message, log_format))
            return
        except OSError:
            pass  # said on stderr below, with the message itself
    sys.stderr.write(f"rootless: {message}\n" if level == "error" else f"rootless: {level}: {message}\n")
    sys.stderr.flush()
    if log:
        try:
            _append(log, _format(level, message, log_format))
        except OSError as err:
            sys.stderr.write(f"rootless: cannot write log {log}: {err.strerror}\n")
