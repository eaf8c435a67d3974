"""What the end-to-end WebSocket tests serve: the real app, plus the test-only probe routes.

`uvicorn tests.e2e.probe_asgi:app` (from the repository root).
"""

from __future__ import annotations

import asyncio

from container import Container
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.app import create_app
from carpool.web.responses import json_response
from tests import probe_routes
from tests.helpers import probe

probes = Blueprint("probe_ws", url_prefix="/_probe/ws")
_now = 0
_most = 0


@probe(probes, "/busy", method="GET")
async def busy(request: Request) -> HTTPResponse:
    """Stays busy for `?s=` seconds (in Python), counting how many are busy at once."""
    global _now, _most
    _now += 1
    _most = max(_most, _now)
    try:
        await asyncio.sleep(float(request.args.get("s", "0.02")))
    finally:
        _now -= 1
    return json_response({"busy": True})


@probe(probes, "/reset", method="POST")
async def reset(request: Request) -> HTTPResponse:
    """Forget the high-water mark."""
    global _most
    _most = 0
    return json_response({"most": 0})


@probe(probes, "/most", method="GET")
async def most(request: Request) -> HTTPResponse:
    """The largest number of `busy` calls that ran at the same moment since the last reset."""
    return json_response({"most": _most, "now": _now})


@probe(probes, "/headers", method="GET")
async def headers(request: Request) -> HTTPResponse:
    """The request's headers, as its handler sees them."""
    return json_response({str(name): value for name, value in request.headers.items()})


app = create_app(Container())
app.blueprint(probe_routes.blueprint)
app.blueprint(probes)
