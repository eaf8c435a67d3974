"""`GET /openapi.json`, `GET /asyncapi.json`, and the Swagger UI at `/docs` with its assets
served from the wheel."""

from __future__ import annotations

import asyncio
import importlib.resources
import mimetypes
from collections.abc import Callable
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field
from sanic import Blueprint, Sanic
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.errors import NotFound
from carpool.web.endpoints import PUBLIC, Answer, Doc, endpoint
from carpool.web.openapi.asyncapi import build_asyncapi
from carpool.web.openapi.document import ASYNCAPI, build_document
from carpool.web.responses import dumps

blueprint = Blueprint("openapi")
# Only what the page below loads: the wheel also ships an editor we do not serve.
AssetName = Literal[
    "swagger-ui.css", "swagger-ui-bundle.js", "index.css", "favicon-32x32.png", "favicon-16x16.png"
]
_ASSETS = frozenset(get_args(AssetName))
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
  <p style="font-family: sans-serif; margin: 1em 2em">
    The WebSocket <code>/ws</code> is described by its
    <a href="/asyncapi.json">AsyncAPI 3 document</a>.
  </p>
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


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)."""

    openapi: Literal["3.1.0"]
    info: dict[str, Any]
    paths: dict[str, Any]


class AsyncApiDocument(BaseModel):
    """An AsyncAPI 3 document (https://www.asyncapi.com/docs/reference/specification/v3.0.0)."""

    asyncapi: Literal["3.0.0"]
    info: dict[str, Any]
    channels: dict[str, Any] = Field(default_factory=dict)


class DocsAsset(BaseModel):
    """A file of the docs UI."""

    name: AssetName


def _cached(request: Request, key: str, build: Callable[[Sanic[Any, Any]], Any]) -> HTTPResponse:
    # Built once per app, after every route is registered (the first time it is asked for).
    documents: dict[str, bytes] | None = request.app.ctx.documents
    if documents is None:
        documents = request.app.ctx.documents = {}
    document = documents.get(key)
    if document is None:
        document = documents[key] = dumps(build(request.app))
    return HTTPResponse(document, content_type="application/json")


@endpoint(
    blueprint,
    "/openapi.json",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc(
        "openapi",
        "This document",
        "documentation",
        answers={
            200: Answer(
                "The OpenAPI 3.1 document.",
                OpenApiDocument,
                {"openapi": "3.1.0", "info": {"title": "carpool", "version": "0.1.0"}, "paths": {}},
            )
        },
    ),
)
async def openapi_document(request: Request) -> HTTPResponse:
    """The OpenAPI 3.1 document of this app's routes."""
    return _cached(request, "openapi_document", build_document)


@endpoint(
    blueprint,
    ASYNCAPI,
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc(
        "asyncapi",
        "The AsyncAPI 3 document of the WebSocket protocol (/ws)",
        "documentation",
        answers={
            200: Answer(
                "The AsyncAPI 3 document.",
                AsyncApiDocument,
                {"asyncapi": "3.0.0", "info": {"title": "carpool WebSocket", "version": "0.1.0"}},
            )
        },
    ),
)
async def asyncapi_document(request: Request) -> HTTPResponse:
    """The AsyncAPI 3 document of this app's socket routes."""
    return _cached(request, "asyncapi_document", build_asyncapi)


@endpoint(
    blueprint,
    "/docs",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc(
        "docs",
        "Interactive documentation (Swagger UI, served locally)",
        "documentation",
        answers={
            200: Answer("An HTML page.", example="<!DOCTYPE html>...", media_type="text/html")
        },
    ),
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
    doc=Doc(
        "docsAsset",
        "The docs UI's own scripts and styles",
        "documentation",
        answers={200: Answer("The file.", example="...", media_type="*/*")},
        path=DocsAsset,
        example={"name": "index.css"},
    ),
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
