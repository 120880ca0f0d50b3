"""No module takes another module's private names.

A leading underscore says "this module's own": another module that imports it (or reaches it
as ``module._name``) breaks when the owner renames or changes it, and nothing warns the owner.
What several modules share is public inside the package (a name without the underscore in a
submodule, not in the top-level API), or it lives where it is used. Private *modules*
(`im2latex_encoder._atomic`, `benchmarks._harness`) are the package's own helpers and may be
imported; their private names may not. Read from the source with `ast`, over the package, the
pretrain scripts and the benchmarks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("im2latex_encoder", "pretrain", "benchmarks")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for tree in TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if ".ipynb_checkpoints" not in path.parts
    }


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _source_of(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    anchor = module.split(".") if is_package else module.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _private_uses(module: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """`file:line name` for each private name of another of our modules that `module` uses."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    aliases: dict[str, str] = {}  # a local name bound to one of our modules -> that module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _source_of(node, module, path.name == "__init__.py")
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # a (sub)module, private or not
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                elif _is_private(alias.name) and source != module and source in modules:
                    found.append(f"{where}:{node.lineno} from {source} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
            and _is_private(node.attr)
        ):
            found.append(f"{where}:{node.lineno} {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_another_module_s_private_names():
    modules = _modules()
    assert {"im2latex_encoder.presets", "pretrain.compare", "benchmarks._harness"} <= set(modules)
    found = [
        use for module, path in modules.items() for use in _private_uses(module, path, modules)
    ]
    assert found == [], "cross-module private names:\n" + "\n".join(found)


def test_the_check_sees_both_spellings(tmp_path):
    """The checker itself: an import of a private name and a `module._name` are both found."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helpers.py").write_text("def shared():\n    pass\n\ndef _own():\n    pass\n")
    (package / "owner.py").write_text("def _own():\n    pass\n")
    (package / "user.py").write_text(
        "from pkg import _helpers, owner\n"
        "from pkg._helpers import shared\n"
        "from pkg.owner import _own\n"
        "from . import owner as o\n"
        "o._own()\n"
        "_helpers._own()\n"
    )
    modules = {
        name: package / f"{name.split('.')[-1] if '.' in name else '__init__'}.py"
        for name in ("pkg", "pkg._helpers", "pkg.owner", "pkg.user")
    }
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = _private_uses("pkg.user", modules["pkg.user"], modules)
    finally:
        ROOT = saved
    assert found == [
        "pkg/user.py:3 from pkg.owner import _own",
        "pkg/user.py:5 pkg.owner._own",
        "pkg/user.py:6 pkg._helpers._own",
    ]
