"""Test helpers used across the suite (one place for each)."""

from __future__ import annotations

import itertools
from typing import Any

from sanic import Blueprint

from carpool import app as app_module
from carpool.web.endpoints import PUBLIC, Doc, endpoint

_serial = itertools.count()


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
