import os
import sys
import time

from rootless.shim import logformat, client as shim_client
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    shimmed = shim_client.ShimmedContainer(ctx.root, parsed.args["id"])
    # The shim writes the exit record after the last output: once it is there and the shim is
    # gone, the log is complete.
    return copy_log(shimmed.log_path, shimmed.log_format, parsed.options["follow"],
                    lambda: shimmed.exit_record() is not None and not shimmed.shim_alive())


def copy_log(path: str, log_format: str, follow: bool, finished, since: str = "") -> int:
    """The output in the shim's log, each line to the stream it came from; with follow, until
    finished() says no more will come. since: leave out lines older than this RFC 3339 time.
    `rlx logs` calls it too."""
    streams = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    try:
        log = open(path, "rb")
    except OSError as err:
        raise RootlessError(f"open the log {path}: {err.strerror}") from None
    with log:
        pending = b""
        while True:
            chunk = log.read(65536)
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    when, stream, output = logformat.parse_entry(line, log_format)
                    if when >= since:
                        streams.get(stream, sys.stdout.buffer).write(output)
                continue
            for out in streams.values():
                out.flush()
            if not follow:
                return 0
            if finished():
                if log.read(1) == b"":
                    return 0
                log.seek(-1, os.SEEK_CUR)
                continue
            time.sleep(0.05)
