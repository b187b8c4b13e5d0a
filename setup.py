"""Builds the two C programs and the one extension module that ship inside the Python package;
everything else is in pyproject.toml. Without a C compiler (or Python's headers) the package
still installs, and works:
- rootless/create/initwait (rootless/create/initwait.c): without it the created init waits as
  Python, with about 8 MiB more memory per created container (`--debug` says so);
- rootless/front/front (rootless/front/front.c): the `rootless` command's compiled front, which
  packaging/install-deps installs as the command; without it every call starts Python;
- rootless/linux/_native (rootless/linux/_native.c): the system calls of
  rootless/linux/syscalls.py; without it they go through ctypes (rootless/linux/libc.py),
  about 4 ms more on every create and run."""

import os
import shutil
import subprocess
import sys
import sysconfig

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

# Extension modules, built as the programs are (one compiler call each, no setuptools Extension:
# the VM tier's guest reads this table and builds them the same way). The include folder and
# the file name's suffix are the building interpreter's.
EXTENSIONS = {
    ("rootless", "linux", "_native"): (
        ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-s"],
        "system calls go through ctypes, about 4 ms more per create"),
}


def compile_commands(compiler: str, build_lib: str):
    """(name, what is lost without it, the compiler's argv) of each program and extension."""
    for parts, (cflags, without) in PROGRAMS.items():
        yield "/".join(parts), without, [compiler, *cflags, "-o", os.path.join(build_lib, *parts),
                                         os.path.join(*parts) + ".c"]
    include = sysconfig.get_paths()["include"]
    for parts, (cflags, without) in EXTENSIONS.items():
        target = os.path.join(build_lib, *parts) + sysconfig.get_config_var("EXT_SUFFIX")
        if not os.path.exists(os.path.join(include, "Python.h")):
            yield "/".join(parts), f"no Python.h in {include} (python3-dev): {without}", None
            continue
        yield "/".join(parts), without, [compiler, *cflags, "-I", include, "-o", target, os.path.join(*parts) + ".c"]


class BuildPrograms(build_py):
    def run(self):
        super().run()
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        for name, without, argv in compile_commands(compiler or "cc", self.build_lib):
            if compiler is None:
                print(f"rootless: no C compiler: {name} not built ({without})", file=sys.stderr)
            elif argv is None or subprocess.run(argv).returncode != 0:
                print(f"rootless: {name} did not build: {without}", file=sys.stderr)


setup(cmdclass={"build_py": BuildPrograms})
