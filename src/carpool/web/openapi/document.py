"""The OpenAPI 3.1 document of an app, generated from what its routes declare (`@endpoint`)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sanic import Sanic

from carpool.route_names import template
from carpool.web.endpoints import endpoint_of
from carpool.web.openapi.operations import (
    SECURITY_SCHEMES,
    Operation,
    head_of,
    operation,
    problem_responses,
)
from carpool.web.openapi.schemas import Components

log = logging.getLogger("carpool.openapi")
ASYNCAPI = "/asyncapi.json"
# The order the docs UI shows: the app's own tags first (in the order its routes were
# registered), then the machinery's, in this order.
_MACHINERY = ("batch", "websocket", "operations", "documentation")
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "schema": {"type": "string"},
    "description": "Your id for this request; every answer echoes it. One that is not 1 to 128"
    " of `A-Za-z0-9._:/+=@-` is replaced by one the server makes.",
}
_OTHER_METHODS = "Any other method answers 405 (problem+json) with `Allow` naming those it takes."
_DESCRIPTION = """\
Every operation can also run as an item of `POST /batch` or as a frame over the WebSocket
`/ws` (see `/asyncapi.json`), answering the same bytes. Errors are RFC 9457
`application/problem+json`. A path that exists answers 405 (with `Allow`) to a method it
does not take."""


def build_document(app: Sanic[Any, Any]) -> dict[str, Any]:
    """The document describing every declared route `app` serves.

    An undeclared route is left out (and logged): tests require there is none.
    """
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes:
        declared = endpoint_of(route)
        path = template(route.uri)
        if declared is None:
            log.warning("route %s is not declared: it is not in the OpenAPI document", path)
            continue
        operations: dict[str, Operation] = {}
        for method in sorted(route.methods - {"HEAD"}):
            operations[method.lower()] = operation(declared, route, method, components)
        if "HEAD" in route.methods and "get" in operations:
            operations["head"] = head_of(operations["get"])
        item = paths.setdefault(path, _path_item())
        item.update(operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "carpool",
            "version": version_of_carpool(),
            "summary": "A parts catalog whose every route can be called singly, in a batch,"
            " or over a WebSocket.",
            "description": _DESCRIPTION,
        },
        "externalDocs": {"description": "The WebSocket protocol (AsyncAPI 3)", "url": ASYNCAPI},
        "tags": [{"name": name} for name in _tags(paths)],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "responses": problem_responses(),
            "parameters": {"request_id": _REQUEST_ID},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _path_item() -> dict[str, Any]:
    return {
        "description": _OTHER_METHODS,
        "parameters": [{"$ref": "#/components/parameters/request_id"}],
    }


def _tags(paths: dict[str, dict[str, Any]]) -> list[str]:
    used = [
        tag
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
        for tag in operation.get("tags", ())
    ]
    first_seen = list(dict.fromkeys(used))
    machinery = [tag for tag in _MACHINERY if tag in first_seen]
    return [tag for tag in first_seen if tag not in _MACHINERY] + machinery


def version_of_carpool() -> str:
    """The installed package's version (documents carry it)."""
    try:
        return version("carpool")
    except PackageNotFoundError:
        return "0"
