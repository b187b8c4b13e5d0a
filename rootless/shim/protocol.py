"""Frames between the shim and its clients (`attach`, `wait`) on the shim's socket
(STATEDIR/attach). Each frame is a type byte, a 4-byte big-endian length, and the payload.

client -> shim:  STDIN data for the container's stdin (or its terminal)
                 RESIZE "ROWS COLS": the terminal's new size
                 CLOSE_STDIN: end of the client's input, passed on as end of file
shim -> client:  STDOUT / STDERR output as the container wrote it, from the moment of attach
                 EXIT "CODE": the container exited with CODE (128+N for signal N); then close
"""

import struct

STDIN, RESIZE, CLOSE_STDIN, STDOUT, STDERR, EXIT = range(6)
_HEADER = struct.Struct("!BI")
HEADER_SIZE = _HEADER.size
SOCKET_NAME = "attach"


def frame(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def split_frames(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete frames at the start of buffer, and what is left of it."""
    frames = []
    while len(buffer) >= HEADER_SIZE:
        kind, length = _HEADER.unpack_from(buffer)
        if len(buffer) < HEADER_SIZE + length:
            break
        frames.append((kind, buffer[HEADER_SIZE:HEADER_SIZE + length]))
        buffer = buffer[HEADER_SIZE + length:]
    return frames, buffer
