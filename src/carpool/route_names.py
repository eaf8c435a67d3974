"""Routes by their template (`/things/{thing_id}`), never by raw path: low-cardinality names."""

from __future__ import annotations

import functools
import re

from sanic.request import Request

_PARAMETER = re.compile(r"<([^:>]+)(?::[^>]*)?>")
_TYPED_PARAMETER = re.compile(r"<([^:>]+)(?::([^>]*))?>")


@functools.lru_cache(maxsize=4096)  # a name per route: asked for on every call and item
def template(uri: str) -> str:
    """A Sanic route URI (`/things/<thing_id:int>`) as a template (`/things/{thing_id}`)."""
    return _PARAMETER.sub(r"{\1}", uri)


def route_of(request: Request) -> str | None:
    """The template of the route `request` was routed to; None before routing or if none matched."""
    route = request.route
    return template(route.uri) if route is not None else None


def path_parameters(uri: str) -> list[tuple[str, str]]:
    """`(name, converter)` of each parameter of a Sanic route URI, in order (`str` if untyped)."""
    return [(name, label or "str") for name, label in _TYPED_PARAMETER.findall(uri)]
