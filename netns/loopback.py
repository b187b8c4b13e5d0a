"""Bring `lo` up in the current network namespace, as `ip link set lo up` would.

An ioctl on a datagram socket: no netlink library and no import cost for the common case, a
container with a private network namespace and nothing else (runc users expect lo up).
"""

import _socket
import fcntl
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sH14x"  # struct ifreq: name, then ifr_flags in the union


def bring_up(name: str = "lo") -> None:
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack(_IFREQ, name.encode(), 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack(_IFREQ, name.encode(), flags | IFF_UP))
    finally:
        sock.close()
