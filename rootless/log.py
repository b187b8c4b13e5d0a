"""Errors, warnings and --debug lines for the user, where runc puts them.

runc's contract, which podman and containerd rely on: with `--log FILE` every message goes to
the file in logrus's format, one line each, per `--log-format`:

    text  time="2026-11-29T08:00:00Z" level=warning msg="a message"
    json  {"level":"warning","msg":"a message","time":"2026-11-29T08:00:00Z"}

Warnings and debug lines then go nowhere else: the runtime's stderr is often the container's
own (conmon hands its pipes to `create`), and podman shows the file's message when it holds
exactly one line. An error goes to the file and to stderr. Without `--log`, all of them go to
stderr, as one line `rootless: [LEVEL: ]message` (runc writes its logrus line there).
"""

from rootless import jsonlite as json
import os
import sys
import time


def _timestamp() -> str:
    # logrus's default: RFC 3339 to the second (runc's TZ is UTC here, as on most hosts)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


# logrus's text formatter quotes a value holding anything but these (needsQuoting)
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@^+")
_GO_ESCAPES = {"\\": "\\\\", '"': '\\"', "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v"}


def _text_value(value: str) -> str:
    """A value as logrus writes it: bare when it can be, else quoted as Go's %q does."""
    if all(ch in _BARE for ch in value):
        return value
    out = []
    for ch in value:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is None and (ch < " " or ch == "\x7f"):
            escaped = f"\\x{ord(ch):02x}"
        out.append(escaped or ch)
    return '"' + "".join(out) + '"'


def format_line(level: str, message: str, log_format: str, timestamp: str | None = None) -> str:
    """One line of the --log file, as logrus (runc) writes it."""
    stamp = timestamp or _timestamp()
    if log_format == "json":
        # keys in Go's map order (sorted); <, > and & escaped as Go's encoder does by default
        text = json.dumps({"level": level, "msg": message, "time": stamp})
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"time={_text_value(stamp)} level={level} msg={_text_value(message)}"


def emit(level: str, message: str, *, log: str | None, log_format: str) -> None:
    """level: "error", "warning" or "debug"."""
    message = " ".join(message.splitlines()) or "unknown error"
    if log:
        try:
            _append(log, format_line(level, message, log_format))
        except OSError as err:
            sys.stderr.write(f"rootless: cannot write log {log}: {err.strerror}\n")
        else:
            if level != "error":
                return
    sys.stderr.write(f"rootless: {message}\n" if level == "error" else f"rootless: {level}: {message}\n")
    sys.stderr.flush()
