"""docs/security.md's table of scopes names every route the app serves, under the scope that
route declares (public routes included): a route added without it fails here."""

from __future__ import annotations

import re
from pathlib import Path

from carpool.route_names import template
from carpool.web.endpoints import AUTHENTICATED, PUBLIC, endpoint_of
from tests.conftest import make_container
from tests.helpers import create_app

DOC = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
_ROW = re.compile(r"^\| (?P<scope>[^|]+?) \| (?P<opens>.+) \|$", re.MULTILINE)
_PATH = re.compile(r"`(?:[A-Z]+ )?(/[^`\s]*)`")


def _rows() -> dict[str, list[str]]:
    """Each row's scope (as the table words it) and the paths it names."""
    section = DOC.split("## Scopes", 1)[1].split("\n## ", 1)[0]
    return {m["scope"]: _PATH.findall(m["opens"]) for m in _ROW.finditer(section)}


def _row_of(scope: str | None) -> str:
    if scope is PUBLIC:
        return "public"
    if scope == AUTHENTICATED:
        return "any valid token"
    return f"`{scope}`"


def _named(route: str, paths: list[str]) -> bool:
    """`route` is named, or a path it sits under is (`/docs` covers `/docs/assets/{name}`)."""
    return any(route == path or route.startswith(path.rstrip("/") + "/") for path in paths)


def test_every_declared_route_is_in_the_row_of_its_scope(database_url: str) -> None:
    app = create_app(make_container(database_url))
    rows = _rows()
    assert "public" in rows and "any valid token" in rows, rows
    missing = []
    for route in app.router.routes:
        declared = endpoint_of(route)
        assert declared is not None, f"{route.uri} is not declared"
        where = _row_of(declared.scope)
        if not _named(template(route.uri), rows.get(where, [])):
            missing.append(f"{sorted(route.methods)} {template(route.uri)} under {where}")
    assert not missing, missing
