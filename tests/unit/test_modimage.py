"""rootless/modimage.py: the image of the package's modules that the launcher imports from.
Each case builds an image of a small package tree and imports from it in a fresh interpreter
(as the launcher does: -I -S, the image's finder first)."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rootless import modimage

ROOT = Path(__file__).resolve().parents[2]


def write_tree(site: Path) -> None:
    (site / "pkga" / "sub").mkdir(parents=True)
    (site / "pkga" / "__init__.py").write_text("VALUE = 'package'\n")
    (site / "pkga" / "one.py").write_text("from pkga.sub import two\nVALUE = 'one:' + two.VALUE\n")
    (site / "pkga" / "sub" / "__init__.py").write_text("")
    (site / "pkga" / "sub" / "two.py").write_text("VALUE = 'two'\n\ndef fails():\n    raise ValueError('from two')\n")
    (site / "pkga" / "notes").mkdir()  # no __init__.py: not a package, not in the image
    (site / "pkga" / "notes" / "skipped.py").write_text("")


def import_in_fresh_python(site: Path, image: Path, code: str) -> dict:
    """Run `code` after installing the image's finder; it sets `out`, printed as JSON."""
    program = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(site)!r}]\n"
        "from rootless import modimage\n"
        f"finder = modimage.install({str(image)!r})\n"
        "def source(module):\n"
        "    return 'image' if finder is not None and module.__loader__ is finder else 'files'\n"
        f"{code}\n"
        "print(json.dumps(out))\n")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True,
                            cwd="/", check=True)
    return json.loads(result.stdout)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    site = tmp_path / "site"
    write_tree(site)
    image = Path(modimage.build(str(site), ("pkga",), str(tmp_path / "modules.image")))
    return site, image


def test_the_image_holds_every_module_of_the_packages(tree) -> None:
    site, image = tree
    index = modimage.read_index(str(image))[0]
    assert sorted(index) == ["pkga", "pkga.one", "pkga.sub", "pkga.sub.two"]
    assert index["pkga"][:2] == (str(site / "pkga" / "__init__.py"), True)
    assert index["pkga.one"][:2] == (str(site / "pkga" / "one.py"), False)


def test_modules_come_from_the_image_and_look_as_if_found_on_disk(tree) -> None:
    site, image = tree
    out = import_in_fresh_python(site, image, (
        "import pkga.one, pkga.sub.two, traceback\n"
        "try:\n"
        "    pkga.sub.two.fails()\n"
        "except ValueError:\n"
        "    shown = traceback.format_exc()\n"
        "out = {'sources': [source(m) for m in (pkga, pkga.one, pkga.sub, pkga.sub.two)],\n"
        "       'value': pkga.one.VALUE, 'file': pkga.one.__file__, 'path': pkga.sub.__path__,\n"
        "       'traceback_line': \"raise ValueError('from two')\" in shown}"))
    assert out == {"sources": ["image"] * 4, "value": "one:two", "file": str(site / "pkga" / "one.py"),
                   "path": [str(site / "pkga" / "sub")], "traceback_line": True}


def test_a_source_changed_since_the_build_is_imported_from_the_file(tree) -> None:
    site, image = tree
    (site / "pkga" / "sub" / "two.py").write_text("VALUE = 'edited two'\n")
    out = import_in_fresh_python(site, image, (
        "import pkga.one, pkga.sub.two\n"
        "out = [pkga.one.VALUE, source(pkga.one), source(pkga.sub.two)]"))
    assert out == ["one:edited two", "image", "files"]


def test_a_source_touched_with_the_same_size_is_imported_from_the_file(tree) -> None:
    site, image = tree
    two = site / "pkga" / "sub" / "two.py"
    two.write_text(two.read_text().replace("'two'", "'TWO'"))
    stat = two.stat()
    os.utime(two, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    out = import_in_fresh_python(site, image, "import pkga.sub.two\nout = [pkga.sub.two.VALUE, source(pkga.sub.two)]")
    assert out == ["TWO", "files"]


def test_a_module_added_after_the_build_is_found_beside_its_package(tree) -> None:
    site, image = tree
    (site / "pkga" / "sub" / "three.py").write_text("VALUE = 'three'\n")
    out = import_in_fresh_python(site, image, (
        "import pkga.sub.three\n"
        "out = [pkga.sub.three.VALUE, source(pkga.sub), source(pkga.sub.three)]"))
    assert out == ["three", "image", "files"]


def test_an_image_written_again_after_its_index_was_read_is_not_misread(tree) -> None:
    """An upgrade rewrites the image under a running process: the offsets it read no longer
    hold, so the modules it still imports are compiled from their sources."""
    site, image = tree
    first = site / "pkga" / "__init__.py"  # the image's first module: every offset after it moves
    out = import_in_fresh_python(site, image, (
        "import pathlib\n"
        f"pathlib.Path({str(first)!r}).write_text('VALUE = ' + repr('x' * 5000) + '\\n')\n"
        f"modimage.build({str(site)!r}, ('pkga',), {str(image)!r})\n"
        "import pkga.sub.two\n"
        "out = [pkga.sub.two.VALUE, len(pkga.VALUE), source(pkga), source(pkga.sub.two)]"))
    assert out == ["two", 5000, "files", "image"]


@pytest.mark.parametrize("damage", ["missing", "another python", "not an image", "cut short"])
def test_an_image_this_python_cannot_use_is_ignored(tree, damage: str) -> None:
    site, image = tree
    data = image.read_bytes()
    if damage == "missing":
        image.unlink()
    elif damage == "another python":
        image.write_bytes(b"\x00\x00\r\n" + data[4:])
    elif damage == "not an image":
        image.write_bytes(b"#!/bin/sh\necho not an image\n")
    else:
        image.write_bytes(data[:20])
    assert modimage.read_index(str(image)) is None
    out = import_in_fresh_python(site, image, "import pkga.one\nout = [finder is None, pkga.one.VALUE, source(pkga.one)]")
    assert out == [True, "one:two", "files"]


def test_the_installed_launcher_imports_the_package_from_its_image() -> None:
    """packaging/install-deps writes the image after pip installed the package, so that it
    matches the installed sources: the launcher's finder (-I -S, site-packages appended) gives
    every Python module of the create and run path, none from the files."""
    site = sysconfig.get_paths()["purelib"]
    image = Path(site) / "rootless" / modimage.IMAGE_NAME
    assert image.is_file(), f"{image}: packaging/install-deps did not write the image"
    code = (
        "import sys\n"
        f"sys.path.append({site!r})\n"
        "from rootless import modimage\n"
        "finder = modimage.install()\n"
        "import rootless.fastpath, rootless.cli, rootless.commands.run, rootless.create.launcher, "
        "rootless.create.nsstage, rootless.create.init, rootless.container\n"
        "ours = [m for name, m in sys.modules.items() if name.split('.')[0] in modimage.PACKAGES\n"
        "        and m.__file__.endswith('.py')]\n"
        "print(len(ours), ' '.join(sorted(m.__name__ for m in ours if m.__loader__ is not finder)))\n")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd="/",
                            check=True)
    count, _, from_files = result.stdout.strip().partition(" ")
    # rootless and rootless.modimage load the finder itself; extension modules are not in it
    assert int(count) > 30 and from_files == "rootless rootless.modimage", result.stdout
