"""The package's module-level imports form no cycle.

A cycle works or breaks depending on which module of it is imported first (the others see it
half-initialised), so a test importing modules in one order can pass while a user's order fails.
The graph is read from the source with `ast`: only imports that run when a module is imported
count (module level, including `if`/`try` blocks and class bodies), not those inside functions,
which run later, nor those under `if TYPE_CHECKING:`, which never run.
"""

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "im2latex_encoder"
PACKAGE = PACKAGE_ROOT.name


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _import_time_imports(body: list[ast.stmt]):
    """The Import/ImportFrom nodes that run when the module is imported."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None) or []
                blocks = [
                    c.body if isinstance(c, (ast.ExceptHandler, ast.match_case)) else [c]
                    for c in children
                ]
                for block in blocks:
                    yield from _import_time_imports(block)


def _targets(node: ast.stmt, importer: str, is_package: bool, modules) -> set[str]:
    """The package modules an import statement loads (explicitly, not their parents)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        base = node.module or ""
        if node.level:
            anchor = importer.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from a import b`: the submodule a.b when there is one, else a name of a.
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    return {name for name in names if name in modules}


def import_graph() -> dict[str, set[str]]:
    """Module name -> the package modules it imports at import time."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in _import_time_imports(tree.body):
            edges |= _targets(node, name, is_package, modules)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_graph_sees_the_package():
    graph = import_graph()
    assert PACKAGE in graph and f"{PACKAGE}.data.inkml" in graph
    # The data modules' re-exports are module-level imports, and they are in the graph.
    assert f"{PACKAGE}.data.inkml" in graph[f"{PACKAGE}.data"]


def test_only_imports_that_run_at_import_time_count():
    source = """
import a
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import never
else:
    import b
try:
    import c
except ImportError:
    import d
class K:
    import e
def f():
    import later
"""
    found = {
        alias.name for node in _import_time_imports(ast.parse(source).body) for alias in node.names
    }
    assert found == {"a", "TYPE_CHECKING", "b", "c", "d", "e"}


def test_targets_resolve_submodules_and_relative_imports():
    modules = _modules()

    def targets(line, importer, is_package=False):
        return _targets(ast.parse(line).body[0], f"{PACKAGE}.{importer}", is_package, modules)

    assert targets("from im2latex_encoder.data import inkml", "x") == {f"{PACKAGE}.data.inkml"}
    assert targets("from im2latex_encoder.data import DataError", "x") == {f"{PACKAGE}.data"}
    assert targets("import im2latex_encoder.data.ink as ink", "x") == {f"{PACKAGE}.data.ink"}
    assert targets("from .errors import DataError", "data.cache") == {f"{PACKAGE}.data.errors"}
    assert targets("from .. import symbols", "data.cache") == {f"{PACKAGE}.symbols"}
    assert targets("from .inkml import read_inkml", "data", is_package=True) == {
        f"{PACKAGE}.data.inkml"
    }
    assert targets("import numpy", "x") == set()


def test_find_cycle_reports_the_path():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_module_level_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, (
        "module-level import cycle: "
        + " -> ".join(cycle or [])
        + ". Move one import into the function that needs it, or the shared name into a "
        "module both can import."
    )


MODEL_MODULES = {
    f"{PACKAGE}.encoder",
    f"{PACKAGE}.classifier",
    f"{PACKAGE}.neck",
    f"{PACKAGE}.heads",
    f"{PACKAGE}.recognizer",
    f"{PACKAGE}.recognizer.formula_recognizer",
    f"{PACKAGE}.recognizer.decoder",
}


def _every_import(module: str) -> set[str]:
    """The package modules a module imports anywhere: module level, in functions, in classes."""
    modules = _modules()
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= _targets(node, module, path.name == "__init__.py", modules)
    return found


def test_presets_import_no_model():
    # The loader and saver are handed the class: not even a function of presets imports one.
    graph = import_graph()
    reachable, frontier = set(), [f"{PACKAGE}.presets"]
    while frontier:
        for child in graph[frontier.pop()] - reachable:
            reachable.add(child)
            frontier.append(child)
    assert not reachable & MODEL_MODULES, sorted(reachable & MODEL_MODULES)
    assert not _every_import(f"{PACKAGE}.presets") & MODEL_MODULES
    assert f"{PACKAGE}.presets" in graph[f"{PACKAGE}.encoder"], "the models use the loader"


def test_every_import_sees_imports_inside_functions():
    # A check of the check: classifier's presets use is at module level, export's model
    # imports are inside functions; both must be seen.
    assert f"{PACKAGE}.presets" in _every_import(f"{PACKAGE}.classifier")
    assert f"{PACKAGE}.classifier" in _every_import(f"{PACKAGE}.export.encoder")
    assert f"{PACKAGE}.classifier" not in import_graph()[f"{PACKAGE}.export.encoder"]
