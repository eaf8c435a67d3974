"""JSON logs: one line per request and per sub-request, each with its request id."""

from __future__ import annotations

import logging
import random
import re
import sys
import time
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.data.unit_of_work import Work
from carpool.route_names import route_of

REQUEST_ID_HEADER = "x-request-id"
# What a client's own request id may look like; anything else is replaced, never echoed.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
# The loggers carpool writes JSON lines to; records still propagate to the root logger.
_LOGGERS = ("carpool", "sanic")
_HANDLER_NAME = "carpool-json"

requests_log = logging.getLogger("carpool.requests")


def configure_logging(level: str) -> None:
    """JSON lines on stderr for carpool's and Sanic's loggers, at `level`; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        OrjsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)


def request_id(request: Request) -> str:
    """This request's id: the client's `X-Request-ID` if it is a sane one, else a new one.

    Decided once per request and kept on `request.ctx` (sub-requests inherit it).
    """
    known: str | None = getattr(request.ctx, "request_id", None)
    if known is None:
        given: str = request.headers.get(REQUEST_ID_HEADER, "")
        known = given if _CLIENT_REQUEST_ID.fullmatch(given) else _new_request_id()
        request.ctx.request_id = known
    return known


def _new_request_id() -> str:
    # 128 random bits as 32 hex digits (the form uuid4().hex had): an id, not a secret, so
    # Python's own generator will do; uuid4 read the OS's random source on every request.
    return f"{random.getrandbits(128):032x}"


def mark_start(request: Request) -> None:
    """Note when the request started (for its log line) and settle its request id."""
    request.ctx.started = time.perf_counter()
    request_id(request)


def log_request(request: Request, response: BaseHTTPResponse, uow: Work | None) -> None:
    """The request's log line: method, route, status, duration, queries, request id."""
    if not requests_log.isEnabledFor(logging.INFO):
        return
    fields = _fields(request, response.status, getattr(request.ctx, "started", None))
    if uow is not None:
        fields["db_queries"] = uow.stats.queries
        fields["db_ms"] = round(uow.stats.seconds * 1000, 3)
    requests_log.info("request", extra=fields)


class log_subrequest:
    """Sub-request hook (see compose.dispatch): one log line per batch item or frame.

    `db_queries` counts what the shared unit of work sent while the item ran; items that
    run concurrently share (coalesced) queries, so their counts may overlap. A class, not a
    generator-based context manager: it wraps every item, and costs a third as much.
    """

    __slots__ = ("_queries_before", "_request", "_started", "_uow")

    @staticmethod
    def active() -> bool:
        """Whether a line would be written now (sub-request hooks are skipped otherwise)."""
        return requests_log.isEnabledFor(logging.INFO)

    def __init__(self, request: Request) -> None:
        self._request = request
        self._started = time.perf_counter()
        self._uow: Work | None = getattr(request.ctx, "uow", None)
        self._queries_before = self._uow.stats.queries if self._uow is not None else 0

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        if not requests_log.isEnabledFor(logging.INFO):
            return
        request = self._request
        sub = getattr(request.ctx, "subresponse", None)
        fields = _fields(request, sub.status if sub is not None else None, self._started)
        parent: Request = request.ctx.parent_request
        fields["parent_route"] = route_of(parent)
        if self._uow is not None:
            fields["db_queries"] = self._uow.stats.queries - self._queries_before
        requests_log.info("subrequest", extra=fields)


def caller_of(request: Request) -> str | None:
    """The `sub` of the request's caller, if a token identified one (the token is never kept)."""
    identity = getattr(request.ctx, "identity", None)
    sub: str | None = getattr(identity, "sub", None)
    return sub


def _fields(request: Request, status: int | None, started: float | None) -> dict[str, Any]:
    elapsed = time.perf_counter() - started if started is not None else None
    fields: dict[str, Any] = {
        "request_id": request_id(request),
        "method": request.method,
        "route": route_of(request),
        "path": request.path,
        "status": status,
        "sub": caller_of(request),
        "duration_ms": round(elapsed * 1000, 3) if elapsed is not None else None,
    }
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = format(span.trace_id, "032x")
        fields["span_id"] = format(span.span_id, "016x")
    return fields
