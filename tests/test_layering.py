"""The package's layers import only downwards (docs/architecture.md, "Where things are")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "carpool"
# What each layer must never import.
FORBIDDEN = {
    "web": ("carpool.catalog", "carpool.compose", "carpool.app"),
    "catalog": ("carpool.compose", "carpool.app"),
    "compose": ("carpool.catalog", "carpool.app"),
    "data": ("carpool.catalog", "carpool.compose", "carpool.web", "carpool.app"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    offending = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for module in sorted(_imports(path))
        if module.startswith(FORBIDDEN[layer]) or module in ("container", "asgi")
    ]
    assert not offending


def test_the_compose_layer_names_no_resource_of_the_catalog() -> None:
    for path in (PACKAGE / "compose").rglob("*.py"):
        text = path.read_text().lower()
        assert "grommet" not in text and "widget" not in text, path.name
