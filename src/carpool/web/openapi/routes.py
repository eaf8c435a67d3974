"""`GET /openapi.json`, and the Swagger UI at `/docs` with its assets served from the wheel."""

from __future__ import annotations

import asyncio
import importlib.resources
import mimetypes

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.errors import NotFound
from carpool.web.endpoints import PUBLIC, Doc, endpoint
from carpool.web.openapi.document import build_document
from carpool.web.responses import dumps

blueprint = Blueprint("openapi")
# Only what the page below loads: the wheel also ships an editor we do not serve.
_ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "index.css",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)
_ASSET_CACHE = "public, max-age=86400"
_assets: dict[str, bytes] = {}
_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>carpool API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="stylesheet" href="/docs/assets/index.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.onload = () => {
      window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
    };
  </script>
</body>
</html>
"""


@endpoint(
    blueprint,
    "/openapi.json",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc("openapi", "This document", "documentation"),
)
async def openapi_document(request: Request) -> HTTPResponse:
    """The OpenAPI 3.1 document of this app, built once."""
    document: bytes | None = getattr(request.app.ctx, "openapi_document", None)
    if document is None:
        document = request.app.ctx.openapi_document = dumps(build_document(request.app))
    return HTTPResponse(document, content_type="application/json")


@endpoint(
    blueprint,
    "/docs",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc("docs", "Interactive documentation (Swagger UI, served locally)", "documentation"),
)
async def docs(request: Request) -> HTTPResponse:
    """Swagger UI, reading /openapi.json; every asset is local (no internet needed)."""
    return HTTPResponse(_PAGE, content_type="text/html; charset=utf-8")


@endpoint(
    blueprint,
    "/docs/assets/<name:str>",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc("docsAsset", "The docs UI's own scripts and styles", "documentation", errors=(404,)),
)
async def docs_asset(request: Request, name: str) -> HTTPResponse:
    """One of the docs UI's files, from the swagger-ui-py wheel."""
    if name not in _ASSETS:
        raise NotFound(f"no docs asset {name!r}")
    content = _assets.get(name)
    if content is None:
        content = _assets[name] = await asyncio.to_thread(_read_asset, name)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return HTTPResponse(content, content_type=content_type, headers={"cache-control": _ASSET_CACHE})


def _read_asset(name: str) -> bytes:
    return (importlib.resources.files("swagger_ui") / "static" / name).read_bytes()
