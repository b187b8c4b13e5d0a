"""A pty the test holds the master of, for runtime commands that want a terminal."""

import fcntl
import os
import pty
import struct
import termios
import time


class HeldTerminal:
    def __init__(self, rows: int, cols: int):
        self.master, self.slave = pty.openpty()
        self.resize(rows, cols)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read_until(self, text: bytes, timeout: float = 20) -> bool:
        """Read what the programs on the terminal wrote until `text` shows (all of it is in seen)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen and time.monotonic() < deadline:
            try:
                self.seen += os.read(self.master, 4096)
            except OSError:  # EIO: nobody holds the slave any more
                break
        return text in self.seen

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)
