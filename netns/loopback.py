"""Bring `lo` up in the current network namespace, as `ip link set lo up` would.

An ioctl on a datagram socket (rootless.linux.syscalls.interface_up): no netlink library and
no import cost for the common case, a container with a private network namespace and nothing
else (runc users expect lo up).
"""

import os

from rootless.errors import SyscallError
from rootless.linux import syscalls as sc


def bring_up(name: str = "lo") -> None:
    """Raises OSError: the caller (the container init) says what was being done."""
    try:
        sc.interface_up(name)
    except SyscallError as err:
        raise OSError(err.errno, os.strerror(err.errno)) from None
