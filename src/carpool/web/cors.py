"""CORS (Fetch standard) for ALLOWED_ORIGINS: preflight answers and the headers of real answers.

A small implementation at the ASGI edge (see `front_door.py`). sanic-ext's CORS works under
ASGI, but `Extend(app)` adds an undeclared OPTIONS route beside every route and brings its own
OpenAPI and `/docs`; carpool's routes declare themselves and `/docs` is its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

Headers = list[tuple[bytes, bytes]]

ALLOWED_METHODS: Final = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS: Final = (
    "Authorization, Content-Type, X-Request-ID, If-Match, If-None-Match, Idempotency-Key"
)
EXPOSED_HEADERS: Final = (
    "Location, X-Request-ID, ETag, Retry-After, RateLimit, RateLimit-Policy, Server-Timing"
)
PREFLIGHT_MAX_AGE_S: Final = 600


class CorsPolicy:
    """Which foreign origins may call the API from a browser (and open `/ws`)."""

    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(origin.rstrip("/").lower() for origin in origins)

    @property
    def enabled(self) -> bool:
        """Whether any foreign origin is allowed."""
        return bool(self._origins)

    def allows(self, origin: str) -> bool:
        """Whether `origin` (as a browser sends it) is listed in ALLOWED_ORIGINS."""
        return origin.rstrip("/").lower() in self._origins

    def allows_socket(self, origin: str | None, host: str | None) -> bool:
        """Whether a WebSocket handshake from `origin` to `host` may proceed: no Origin (not a
        browser), the server's own host, or a listed origin."""
        if origin is None:
            return True
        if host is not None and urlsplit(origin).netloc.lower() == host.lower():
            return True
        return self.allows(origin)

    def preflight(self, origin: str) -> Headers:
        """The headers of a 204 answering an allowed origin's preflight."""
        return [
            *self.answer(origin),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        ]

    def answer(self, origin: str) -> Headers:
        """The CORS headers of an answer to an allowed origin."""
        return [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
        ]
