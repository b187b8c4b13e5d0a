import os
import sys
import time

from rootless.shim import logformat, client as shim_client
from rootless.errors import RootlessError


def run(ctx, parsed) -> int:
    shimmed = shim_client.ShimmedContainer(ctx.root, parsed.args["id"])
    follow = parsed.options["follow"]
    streams = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    try:
        log = open(shimmed.log_path, "rb")
    except OSError as err:
        raise RootlessError(f"open the log {shimmed.log_path}: {err.strerror}") from None
    with log:
        pending = b""
        while True:
            chunk = log.read(65536)
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    stream, output = logformat.parse_line(line, shimmed.log_format)
                    streams.get(stream, sys.stdout.buffer).write(output)
                continue
            for out in streams.values():
                out.flush()
            if not follow:
                return 0
            # The shim writes the exit record after the last output: once it is there and the
            # log has no more, the output is complete.
            if shimmed.exit_record() is not None and not shimmed.shim_alive():
                if log.read(1) == b"":
                    return 0
                log.seek(-1, os.SEEK_CUR)
                continue
            time.sleep(0.05)
