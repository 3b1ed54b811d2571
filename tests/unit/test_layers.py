"""Dependencies point one way: the engine imports no upper layer, and errors.py imports nothing from mlsearch."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mlsearch"
UPPER = ("mlsearch.api", "mlsearch.ml", "mlsearch.pipelines", "mlsearch.security")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        name = _module_name(path)
        if name != prefix and not name.startswith(prefix + "."):
            continue
        for imported in sorted(_imports(path)):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                out.append(f"{name} imports {imported}")
    return out


def test_engine_imports_no_upper_layer() -> None:
    assert _violations("mlsearch.engine", UPPER) == []


def test_errors_imports_nothing_from_mlsearch() -> None:
    assert _violations("mlsearch.errors", ("mlsearch",)) == []


def test_the_walker_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    assert any(i.startswith("mlsearch.errors") for i in _imports(SRC / "engine" / "settings.py"))
    assert "mlsearch.engine.query.compile" in _imports(SRC / "engine" / "query" / "function_score.py")
    assert _violations("mlsearch.api", ("mlsearch.engine",)) != []  # the check can fail


def test_painless_imports_only_errors() -> None:
    # The interpreter is shared by the engine (update scripts) and ml (connector scripts): it must depend on neither.
    forbidden = ("mlsearch.api", "mlsearch.ml", "mlsearch.pipelines", "mlsearch.security", "mlsearch.engine")
    assert _violations("mlsearch.painless", forbidden) == []
