"""Errors and warnings for the user: one line on stderr, and one line in the --log file.

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
    message = " ".join(message.splitlines()) or "unknown error"
    sys.stderr.write(f"rootless: {message}\n" if level == "error" else f"rootless: {level}: {message}\n")
    sys.stderr.flush()
    if log:
        try:
            _append(log, _format(level, message, log_format))
        except OSError as err:
            sys.stderr.write(f"rootless: cannot write log {log}: {err.strerror}\n")
