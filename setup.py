"""Builds rootless/create/initwait (see rootless/create/initwait.c) next to the Python package; everything
else is in pyproject.toml. Without a C compiler the package still installs: the created init
then waits as Python, with about 8 MiB more memory per created container (`--debug` says so)."""

import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

# No libc, no position independence, no stack protector: a static program of one page of code
# that runs in any container root (rootless/create/initwait.c says why).
CFLAGS = ["-static", "-nostdlib", "-fno-pie", "-no-pie", "-Os", "-ffreestanding", "-fno-builtin",
          "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-Wall", "-Wextra", "-s"]


class BuildWithInitWait(build_py):
    def run(self):
        super().run()
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        target = os.path.join(self.build_lib, "rootless", "create", "initwait")
        if compiler is None:
            print("rootless: no C compiler: rootless/create/initwait not built", file=sys.stderr)
            return
        result = subprocess.run([compiler, *CFLAGS, "-o", target, os.path.join("rootless", "create", "initwait.c")])
        if result.returncode != 0:
            print("rootless: rootless/create/initwait did not build: the init will wait as Python", file=sys.stderr)


setup(cmdclass={"build_py": BuildWithInitWait})
