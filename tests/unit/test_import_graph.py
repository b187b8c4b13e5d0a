"""The import graph is part of the design: the lifecycle verbs and the container init load
neither typer, pyroute2 nor a D-Bus client, because podman runs the runtime several times per
container. Checked in a fresh interpreter, as a real call would start."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("typer", "click", "pyroute2", "dbus", "jeepney", "dbus_next", "asyncio", "pyseccomp", "seccomp",
         "subprocess", "jsonschema", "dataclasses", "httpx", "rich", "zstandard", "rootless.rlx", "rootless.images",
         "rootless.units")  # units: `generate systemd` only
LIFECYCLE = ("create", "start", "run", "state", "kill", "delete", "list", "exec", "ps", "wait", "logs")


@pytest.mark.parametrize("verb", LIFECYCLE)
def test_lifecycle_path_stays_light(verb: str) -> None:
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import rootless.cli\n"
        f"import rootless.commands.{verb}\n"
        "import rootless.create.launcher, rootless.create.nsstage, rootless.create.init, idmap.apply, idmap.plan, idmap.subid\n"
        "import rootless.oci.schema\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or '.'.join(m.split('.')[:2]) in {HEAVY!r}]\n"
        "print(','.join(sorted(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"{verb} imports {result.stdout.strip()}"


# What rootless/linux/_native.c spares the lifecycle path: ctypes (about 4 ms with its
# prototypes), and the modules the init loaded for one call each.
SPARED_BY_THE_EXTENSION = ("ctypes", "_ctypes", "resource", "_prctl", "termios", "_socket", "socket")


@pytest.mark.parametrize("no_native, spared", [("", True), ("1", False)])
def test_with_the_extension_the_lifecycle_path_loads_no_ctypes(no_native: str, spared: bool) -> None:
    """The installed package (the source tree has no built extension), started as the launcher
    starts it (-I -S, site-packages appended): every lifecycle verb, the create and exec stages
    and the init load rootless.linux._native and none of what it spares; ROOTLESS_NO_NATIVE=1
    loads the ctypes fallback instead (which shows that the check sees it)."""
    import sysconfig
    verbs = ", ".join(f"rootless.commands.{verb}" for verb in LIFECYCLE)
    code = (
        "import sys\n"
        f"sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
        f"import rootless.cli, {verbs}\n"
        "import rootless.create.launcher, rootless.create.nsstage, rootless.create.init, rootless.exec.stage\n"
        "import rootless.process.become, rootless.terminal.ctty, netns.loopback\n"
        f"spared = [m for m in sys.modules if m.split('.')[0] in {SPARED_BY_THE_EXTENSION!r}]\n"
        "print('rootless.linux._native' in sys.modules, ','.join(sorted(spared)))\n"
    )
    env = {"PATH": "/usr/bin:/bin", **({"ROOTLESS_NO_NATIVE": no_native} if no_native else {})}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True,
                            cwd="/", env=env)
    native, _, loaded = result.stdout.strip().partition(" ")
    if spared:
        assert (native, loaded) == ("True", ""), result.stdout
    else:
        assert native == "False" and "ctypes" in loaded.split(","), result.stdout


def test_the_shim_imports_almost_nothing() -> None:
    """The shim's memory counts for every running container: it loads no module that the
    interpreter does not need, in a fresh interpreter without site, as rootless.shim.launch
    starts it."""
    import importlib.util
    prctl_folder = str(Path(importlib.util.find_spec("_prctl").origin).parent)  # the venv's site-packages
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {prctl_folder!r}]\n"
        "before = set(sys.modules)\n"
        "import rootless.shim.server\n"
        "print(','.join(sorted(m for m in set(sys.modules) - before if not m.startswith('rootless'))))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    os_itself = {"os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc"}  # site loads them
    assert set(result.stdout.strip().split(",")) <= os_itself | {"select", "_socket", "_prctl", "time", "_json",
                                                                 "_struct", "struct"}, result.stdout


def test_cgroups_load_only_for_configs_that_need_them() -> None:
    """A config without limits on a host that delegates nothing loads nothing of
    rootless/cgroups; the cgroupfs driver and the verbs' operations load no D-Bus client
    (jeepney is for the systemd driver only)."""
    code = (
        "import sys, os\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from rootless.create import launcher\n"
        "from rootless.context import Context\n"
        "os.path.exists = lambda p, real=os.path.exists: False if p.endswith('cgroup.controllers') else real(p)\n"
        "config = {'linux': {'resources': {'devices': [{'allow': False, 'access': 'rwm'}]}}, 'annotations': {}}\n"
        "record = launcher._plan_cgroup(Context(root='/nonexistent'), config, 'c', rootless=True)\n"
        "assert record['driver'] == 'none', record\n"
        "loaded = [m for m in sys.modules if m.startswith('rootless.cgroups')]\n"
        "import rootless.cgroups.manager, rootless.cgroups.fs, rootless.cgroups.stats, rootless.commands.pause\n"
        "import rootless.commands.update, rootless.commands.events\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r} and m != 'json']\n"
        "print(','.join(sorted(loaded + heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", result.stdout


def test_rootless_never_imports_rlx() -> None:
    """`rlx` (typer, httpx) is a second command: nothing under rootless/ outside rlx/ and
    images/ imports them, so no verb of `rootless` can pay for them."""
    import ast
    offenders = []
    for path in sorted((ROOT / "rootless").rglob("*.py")):
        relative = path.relative_to(ROOT / "rootless").parts
        if relative[0] in ("rlx", "images"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in ("typer", "rich", "httpx", "zstandard", "click")
                          or n.startswith(("rootless.rlx", "rootless.images"))]
    assert offenders == []


def test_rlx_loads_httpx_only_to_pull() -> None:
    """`rlx images`, `load` and `bundle` do not pay for the HTTP client."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import rootless.rlx.main\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'zstandard'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_installed_command_is_the_compiled_front(rootless_bin: str) -> None:
    """packaging/install-deps installs rootless/front/front.c's program as `rootless` (gcc is
    among the packages it installs) and the Python launcher beside it as rootless-python."""
    path = Path(rootless_bin).parent
    assert (path / "rootless").read_bytes()[:4] == b"\x7fELF"
    assert (path / "rootless-python").read_text().startswith("#!")


@pytest.mark.parametrize("script", ["rootless-python", "rootless-recvtty"])
def test_the_installed_scripts_start_without_site_and_find_the_venvs_packages(rootless_bin: str, script: str) -> None:
    """packaging/install-deps writes `-IS` into the scripts' first line; each script then puts
    the venv's site-packages on sys.path itself. Its preamble, run as the kernel would run it
    (the interpreter and the flags of its first line), finds every dependency, and the command
    itself works, through the front: `features` loads the seccomp binding from there."""
    path = Path(rootless_bin).parent / script
    interpreter, flags = path.read_text().splitlines()[0][2:].split(" ")
    assert flags == "-IS"
    code = (f"__file__ = {str(path)!r}\n"
            "source = open(__file__).read()\n"
            "exec(compile(source[:source.index('\\nfrom rootless')], __file__, 'exec'))\n"
            "import prctl, xattr, pyseccomp, jeepney, pyroute2, typer, httpx, zstandard, rootless\n"
            "print(sys.flags.no_site, sys.flags.isolated, 'site' in sys.modules)\n")
    result = subprocess.run([interpreter, flags, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "1", "False"]
    if script == "rootless-python":
        features = subprocess.run([str(path.parent / "rootless"), "features"], capture_output=True, text=True,
                                  env={"ROOTLESS_SECCOMP_CACHE": "", "PATH": "/usr/bin:/bin"})
        assert features.returncode == 0 and "SCMP_ARCH_X86_64" in features.stdout, features.stderr
