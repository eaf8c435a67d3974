"""The package's layers import only downwards (docs/architecture.md, "Where things are"), no
two packages import each other, and only the catalog names the catalog's resources."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from carpool import catalog
from carpool.resources.resource import Resource

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "carpool"
# What each layer must never import.
FORBIDDEN = {
    "web": (
        "carpool.catalog",
        "carpool.compose",
        "carpool.resources",
        "carpool.app",
    ),
    "resources": ("carpool.catalog", "carpool.compose", "carpool.app"),
    "catalog": ("carpool.compose", "carpool.app"),
    "compose": ("carpool.catalog", "carpool.resources", "carpool.app"),
    "data": (
        "carpool.catalog",
        "carpool.compose",
        "carpool.resources",
        "carpool.web",
        "carpool.app",
    ),
    "observability": (
        "carpool.catalog",
        "carpool.compose",
        "carpool.resources",
        "carpool.web",
        "carpool.app",
    ),
}
# The layers that must not know what the catalog serves (the catalog is theirs to serve).
DOMAIN_FREE = ("web", "resources", "compose", "data", "observability")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
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


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "carpool" or len(parts) < 2:
        return None
    return parts[1] if (PACKAGE / parts[1]).is_dir() else None


def _package_imports() -> dict[str, set[str]]:
    """Which of the package's sub-packages each sub-package imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        home = path.relative_to(PACKAGE).parts[0]
        if not (PACKAGE / home).is_dir():
            continue  # a top-level module (app.py, errors.py): not a package
        used = {_package_of(module) for module in _imports(path)}
        graph.setdefault(home, set()).update(p for p in used if p and p != home)
    return graph


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    def walk(node: str, trail: list[str]) -> Iterator[list[str]]:
        for nxt in sorted(graph.get(node, ())):
            if nxt == trail[0]:
                yield [*trail, nxt]
            elif nxt not in trail and nxt > trail[0]:  # each cycle once, from its least node
                yield from walk(nxt, [*trail, nxt])

    for start in sorted(graph):
        yield from walk(start, [start])


def test_no_two_packages_import_each_other_even_through_others() -> None:
    graph = _package_imports()
    assert {"web", "observability", "data", "catalog", "resources"} <= set(graph)
    assert list(_cycles(graph)) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert list(_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == [["a", "b", "c", "a"]]


def _resource_names() -> set[str]:
    """Every name the catalog's resources go by (tables, singulars), from the catalog."""
    names = set()
    for module in catalog.resource_modules():
        for value in vars(module).values():
            if isinstance(value, Resource):
                names |= {value.name, value.singular, *(t for t in value.table.metadata.tables)}
    return names


def test_only_the_catalog_names_the_catalogs_resources() -> None:
    names = _resource_names()
    assert {"grommets", "widget", "suppliers"} <= names, "the catalog lists its resources"
    word = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b", re.IGNORECASE)
    offending = [
        f"{path.relative_to(PACKAGE)}: {found.group(0)}"
        for layer in DOMAIN_FREE
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if (found := word.search(path.read_text()))
    ]
    assert not offending
