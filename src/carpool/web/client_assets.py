"""`GET /client.js` (the browser client, an ES module) and `GET /demo` (a live page using it).

Both are files of the checkout's `clients/browser/` (carpool runs from its checkout: `asgi.py`
and `container.py` live there too), read once. Public, never composable; every 200 of a GET
carries its strong ETag and a matching If-None-Match answers 304 (as for every read), and
`Cache-Control: no-cache` has browsers revalidate, so a new client reaches them at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.web.endpoints import PUBLIC, Answer, Doc, endpoint

BROWSER = Path(__file__).resolve().parents[3] / "clients" / "browser"
_CACHE = "public, no-cache"
_read: dict[str, bytes] = {}
blueprint = Blueprint("client_assets")


async def _file(name: str) -> bytes:
    content = _read.get(name)
    if content is None:
        content = _read[name] = await asyncio.to_thread((BROWSER / name).read_bytes)
    return content


@endpoint(
    blueprint,
    "/client.js",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc(
        "clientModule",
        'The browser client, an ES module: import { connect } from "/client.js"',
        "documentation",
        answers={
            200: Answer(
                "The module (its TypeScript declarations: clients/browser/carpool.d.ts).",
                example="export function connect(options = {}) { ... }",
                media_type="text/javascript",
                headers={"etag": "Strong ETag of the module; If-None-Match answers 304."},
            )
        },
        description="Batching, transactions, the socket and live answers: see docs/clients.md.",
    ),
)
async def client_module(request: Request) -> HTTPResponse:
    """The browser client module."""
    content = await _file("carpool.js")
    headers = {"cache-control": _CACHE}
    return HTTPResponse(content, content_type="text/javascript; charset=utf-8", headers=headers)


@endpoint(
    blueprint,
    "/demo",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc(
        "demo",
        "A live page of the catalog, kept current (its query says what; token in #token=...)",
        "documentation",
        answers={
            200: Answer("An HTML page.", example="<!doctype html>...", media_type="text/html")
        },
    ),
)
async def demo_page(request: Request) -> HTTPResponse:
    """The live demo page (`clients/browser/demo.html`: its query says what it shows)."""
    content = await _file("demo.html")
    headers = {"cache-control": _CACHE}
    return HTTPResponse(content, content_type="text/html; charset=utf-8", headers=headers)
