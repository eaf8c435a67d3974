"""Test helpers used across the suite (one place for each)."""

from __future__ import annotations

import itertools
from typing import Any

from sanic import Blueprint

from carpool import app as app_module
from carpool.auth.identity import KNOWN_SCOPES
from carpool.auth.tokens import issue_token
from carpool.web.endpoints import PUBLIC, Doc, endpoint

_serial = itertools.count()
TEST_SECRET = "carpool-test-secret-of-at-least-32-bytes"
"""AUTH_JWT_SECRET of every test app (conftest's `make_container`)."""


def token(*scopes: str, sub: str = "tester", ttl_s: float = 3600, **claims: Any) -> str:
    """A token signed with the tests' secret; with no `scopes`, every scope."""
    return issue_token(TEST_SECRET, sub=sub, scopes=scopes or KNOWN_SCOPES, ttl_s=ttl_s, **claims)


def bearer(*scopes: str, sub: str = "tester", **claims: Any) -> dict[str, str]:
    """An Authorization header carrying `token(*scopes, sub=sub)`."""
    return {"authorization": f"Bearer {token(*scopes, sub=sub, **claims)}"}


AUTH = bearer()
"""Full-scope credentials: what the test clients send unless a test says otherwise."""


def create_app(container: Any) -> app_module.CarpoolApp:
    """`carpool.app.create_app`, for a process that builds many apps (the test session).

    Sanic refuses two apps of one name in a process, and its TouchUp rewrites shared classes
    in place: a second run would fail at startup. Production builds one app per process.
    """
    serial = next(_serial)
    app = app_module.create_app(container, name=f"carpool{serial}")
    app.config.TOUCHUP = serial == 0
    return app


def probe(blueprint: Blueprint, uri: str, *, method: str = "GET") -> Any:
    """Declare a test-only route like every route: public, composable, described as a probe."""
    doc = Doc(f"probe{method}{uri}", "Test probe", "probe")
    return endpoint(blueprint, uri, methods=(method,), scope=PUBLIC, doc=doc)
