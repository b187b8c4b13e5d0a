"""The tree is the map (docs/architecture.md): rootless/ keeps at most 16 modules of its own and
puts everything else in folders, and imports between folders point one way only. Read from the
source with ast, lazy imports inside functions included: a cycle through a lazy import is a
cycle all the same."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rootless", "idmap", "netns")
MAX_TOP_MODULES = 16


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str | None:
    """The node of the folder-level graph a module belongs to: a folder of rootless/ (or idmap,
    netns) as a whole, and each module directly in rootless/ on its own."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] != "rootless" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def _imports(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from rootless.shim import protocol` imports rootless.shim.protocol
            found.update(f"{base}.{alias.name}" for alias in node.names)
            found.add(base)
    return found


def _sources() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def folder_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _sources():
        module = _module_name(path)
        unit = _unit(module)
        edges = graph.setdefault(unit, set())
        for imported in _imports(path, module):
            target = _unit(imported)
            if target is None or target == unit:
                continue
            # "from rootless import errors" names the top module rootless.errors: keep the
            # node only when it exists, so the package itself is not mistaken for one.
            if target == "rootless" or (target.startswith("rootless.") and not _exists(target)):
                continue
            edges.add(target)
    return graph


def _exists(unit: str) -> bool:
    relative = Path(*unit.split("."))
    return (ROOT / relative).is_dir() or (ROOT / relative).with_suffix(".py").is_file()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_folder_imports_point_one_way() -> None:
    graph = folder_graph()
    assert "rootless.create" in graph and "rootless.linux" in graph["rootless.create"]  # the walk sees imports
    cycle = _cycle(graph)
    assert cycle is None, "folders import each other back: " + " -> ".join(cycle)


def test_the_kernel_layer_imports_no_folder() -> None:
    """rootless/linux is the bottom: it may use the top's leaf modules (errors, paths), never
    a folder above it."""
    above = {unit for unit in folder_graph()["rootless.linux"] if unit not in ("rootless.errors", "rootless.paths")}
    assert above == set()


def test_rootless_itself_holds_at_most_16_modules() -> None:
    top = sorted(path.name for path in (ROOT / "rootless").glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"rootless/ holds {len(top)} modules: put new ones in a folder: {top}"


def test_folder_inits_are_empty() -> None:
    """A folder's __init__ is paid by every import of the folder, on the lifecycle path too."""
    for init in (ROOT / "rootless").glob("*/__init__.py"):
        if init.parent.name == "commands":
            continue
        code = [node for node in ast.parse(init.read_text()).body
                if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        assert code == [], f"{init.relative_to(ROOT)} runs code on import"


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
