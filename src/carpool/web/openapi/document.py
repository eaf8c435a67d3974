"""The OpenAPI 3.1 document of an app: its routes, described by `operations`."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sanic import Sanic

from carpool.web.openapi.operations import operations, parameters, problem_responses
from carpool.web.openapi.schemas import components
from carpool.web.route_names import template

log = logging.getLogger("carpool.openapi")
# The order the docs UI shows: the resources first, the machinery last.
_TAG_ORDER = ("grommets", "widgets", "batch", "websocket", "operations", "documentation")
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:/+=@-]{1,128}$"},
    "description": "Your id for this request (else one is made); every answer echoes it.",
}


def build_document(app: Sanic[Any, Any]) -> dict[str, Any]:
    """The document describing every route `app` serves that carpool knows how to describe.

    A route with no description is left out (and logged): tests require there is none.
    """
    known = operations()
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes:
        path = template(route.uri)
        for method in sorted(route.methods):
            operation = known.get((method.lower(), path))
            if operation is None and method == "HEAD" and ("get", path) in known:
                operation = _head_of(known[("get", path)])
            if operation is None:
                log.warning("route %s %s has no OpenAPI description", method, path)
                continue
            paths.setdefault(path, {"parameters": [{"$ref": "#/components/parameters/request_id"}]})
            paths[path][method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "carpool",
            "version": _version(),
            "summary": "A parts catalog whose every route can be called singly, in a batch,"
            " or over a WebSocket.",
        },
        "tags": [{"name": name} for name in _tags(paths)],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components(),
            "responses": problem_responses(),
            "parameters": {**parameters(), "request_id": _REQUEST_ID},
        },
    }


def _head_of(get: dict[str, Any]) -> dict[str, Any]:
    """HEAD of a GET route: the same operation, answering headers only."""
    head = {**get, "summary": f"{get.get('summary', 'GET')} (headers only)"}
    if "operationId" in get:
        head["operationId"] = f"{get['operationId']}Head"
    head["responses"] = {
        status: {k: v for k, v in response.items() if k != "content"}
        for status, response in get.get("responses", {}).items()
    }
    return head


def _tags(paths: dict[str, dict[str, Any]]) -> list[str]:
    used = {
        tag
        for item in paths.values()
        for key, operation in item.items()
        if key != "parameters"
        for tag in operation["tags"]
    }
    return sorted(used, key=lambda tag: (_TAG_ORDER.index(tag) if tag in _TAG_ORDER else 99, tag))


def _version() -> str:
    try:
        return version("carpool")
    except PackageNotFoundError:
        return "0"
