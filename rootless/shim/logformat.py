"""The shim's log file: lines in a format tools already read. Pure, and cheap to import (the
shim imports it, and its memory counts per container).

  k8s-file    `2026-11-28T23:59:59.123456789Z stdout F text` (CRI's format, podman's
              k8s-file): F ends a line, P is a piece of a longer one (output not yet ended by
              a newline when it was read)
  json-lines  {"time": "...", "stream": "stdout", "log": "text\n"} (Docker's json-file);
              "log" keeps the newline of a full line and has none for a piece
"""

import time

from rootless import jsonlite as json

FORMATS = ("k8s-file", "json-lines")


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds, UTC."""
    seconds, fraction = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def format_output(stream: str, data: bytes, log_format: str, when: str) -> bytes:
    """Log lines for one read of `stream` (stdout or stderr): a line per newline-ended piece,
    then the rest, if any, as a partial line."""
    out = []
    pieces = data.split(b"\n")
    for index, piece in enumerate(pieces):
        full = index < len(pieces) - 1
        if not full and not piece:
            break
        if log_format == "k8s-file":
            out.append(b"%s %s %s %s\n" % (when.encode(), stream.encode(), b"F" if full else b"P", piece))
        else:
            text = piece.decode("utf-8", "replace") + ("\n" if full else "")
            out.append(json.dumps({"time": when, "stream": stream, "log": text}).encode() + b"\n")
    return b"".join(out)


def parse_entry(line: bytes, log_format: str) -> tuple[str, str, bytes]:
    """(time, stream, output) of one log line: time as written (RFC 3339, fixed width, so
    that times compare as strings), the output as the process wrote it, with its newline
    when the line was full."""
    if log_format == "k8s-file":
        when, stream, tag, text = (line.rstrip(b"\n").split(b" ", 3) + [b"", b"", b""])[:4]
        return when.decode(), stream.decode(), text + (b"\n" if tag == b"F" else b"")
    entry = json.loads(line.decode("utf-8", "replace"))
    return entry.get("time", ""), entry["stream"], entry["log"].encode()
