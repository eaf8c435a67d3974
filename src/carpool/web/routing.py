"""Typed route registration helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sanic import Blueprint

H = TypeVar("H", bound=Callable[..., Any])


def readable(blueprint: Blueprint, uri: str) -> Callable[[H], H]:
    """Register a handler for GET and HEAD: HEAD answers GET's status and headers, no body
    (RFC 9110 asks every general-purpose server to support both)."""
    decorate = blueprint.route(uri, methods=("GET", "HEAD"))

    def register(handler: H) -> H:
        decorate(handler)
        return handler

    return register
