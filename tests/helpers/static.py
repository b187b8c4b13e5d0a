"""Small static C programs the busybox containers run (the rootfs has no libc): built from
tests/helpers/NAME.c with gcc when a test asks for one."""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent


@contextlib.contextmanager
def built(name: str) -> Iterator[Path]:
    """tests/helpers/NAME.c built static in a folder every user can read; removed afterwards.
    Skips the test without gcc."""
    if shutil.which("gcc") is None:
        pytest.skip(f"gcc is missing (tests/run installs it): the test's {name} is built with it")
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/var/tmp"))
    try:
        os.chmod(folder, 0o755)
        binary = folder / name
        subprocess.run(["gcc", "-static", "-O2", "-o", binary, HELPERS / f"{name}.c"], check=True)
        yield binary
    finally:
        shutil.rmtree(folder)
