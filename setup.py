"""Builds the two C programs that ship inside the Python package; everything else is in
pyproject.toml. Without a C compiler the package still installs, and works:
- rootless/create/initwait (rootless/create/initwait.c): without it the created init waits as
  Python, with about 8 MiB more memory per created container (`--debug` says so);
- rootless/front/front (rootless/front/front.c): the `rootless` command's compiled front, which
  packaging/install-deps installs as the command; without it every call starts Python."""

import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

PROGRAMS = {
    # No libc, no position independence, no stack protector: a static program of one page of
    # code that runs in any container root (rootless/create/initwait.c says why).
    ("rootless", "create", "initwait"): (
        ["-static", "-nostdlib", "-fno-pie", "-no-pie", "-Os", "-ffreestanding", "-fno-builtin",
         "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-Wall", "-Wextra", "-s"],
        "the init will wait as Python"),
    # Static: no dynamic loader to run before it answers (podman calls it for every container).
    ("rootless", "front", "front"): (["-static", "-O2", "-Wall", "-Wextra", "-s"],
                                     "every `rootless` call will start Python"),
}


class BuildPrograms(build_py):
    def run(self):
        super().run()
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        for parts, (cflags, without) in PROGRAMS.items():
            name = "/".join(parts)
            if compiler is None:
                print(f"rootless: no C compiler: {name} not built ({without})", file=sys.stderr)
                continue
            target = os.path.join(self.build_lib, *parts)
            result = subprocess.run([compiler, *cflags, "-o", target, os.path.join(*parts) + ".c"])
            if result.returncode != 0:
                print(f"rootless: {name} did not build: {without}", file=sys.stderr)


setup(cmdclass={"build_py": BuildPrograms})
