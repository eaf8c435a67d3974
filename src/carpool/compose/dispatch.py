"""Run one route handler as a plain function on a synthetic request, and capture its answer."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any
from urllib.parse import quote, unquote

from sanic import Sanic
from sanic.compat import Header
from sanic.exceptions import PayloadTooLarge, SanicException
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.data.unit_of_work import UnitOfWork
from carpool.web.errors import problem_for
from carpool.web.responses import problem_response

# Paths that only make sense as the outer request: a batch in a batch, a socket in a frame,
# and the probes (/health, /ready), which answer about the process, not about a call.
FORBIDDEN_PATHS = frozenset({"/batch", "/ws", "/health", "/ready"})
# Headers an item may not set: its identity is its outer request's.
FORBIDDEN_HEADERS = frozenset({"authorization", "cookie"})
# Headers that describe the outer request's transport or body, never an item's.
_NOT_INHERITED = frozenset({"content-length", "content-type", "transfer-encoding", "upgrade"})
# Response headers that are transport, not the handler's own.
_TRANSPORT_HEADERS = frozenset({"content-type", "content-length", "server-timing", "connection"})
# What an HTTP request can carry: a header name is a token (RFC 9110), a value holds no
# control character but tab; a path goes on the wire as printable ASCII (the rest is encoded).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_WIRE_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))

SubrequestHook = Callable[[Request], AbstractAsyncContextManager[None]]


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One request to run inside another: method, path (with query), own headers, body bytes."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(slots=True)
class SubResponse:
    """What a handler answered: status, its own headers, body bytes and their content type."""

    status: int
    headers: dict[str, str]
    body: bytes
    content_type: str | None


class SubrequestRefused(Exception):
    """An item that may not run at all (nested /batch, forbidden header): answered 400."""


def normalise_path(path: str) -> str:
    """`path` with `.`/`..` segments and repeated slashes resolved; the query left alone.

    Spaces, control characters and non-ASCII are percent-encoded, as an HTTP client does.
    """
    raw, sep, query = quote(path, safe=_WIRE_SAFE).partition("?")
    if not raw.startswith("/"):
        raise SubrequestRefused(f"the path {path!r} must start with /")
    clean = posixpath.normpath(raw)
    clean = "/" + clean.lstrip("/")
    if raw.endswith("/") and clean != "/":
        clean += "/"
    return clean + sep + query


def check_subrequest(sub: SubRequest) -> None:
    """Raise SubrequestRefused if `sub` may not run inside another request."""
    decoded = normalise_path(unquote(sub.path)).partition("?")[0].rstrip("/") or "/"
    if decoded in FORBIDDEN_PATHS:
        raise SubrequestRefused(f"{decoded} cannot be called from inside a batch or a frame")
    for name, value in sub.headers.items():
        if name.lower() in FORBIDDEN_HEADERS:
            raise SubrequestRefused(f"an item may not set the {name} header")
        if not _HEADER_NAME.fullmatch(name) or _CONTROL.search(value):
            raise SubrequestRefused(f"the header {name!r} could not be sent in an HTTP request")


def refused(exc: SubrequestRefused) -> SubResponse:
    """The 400 answer of an item that was refused before it ran."""
    return capture(problem_response(400, str(exc), type_="urn:carpool:problem:refused-item"))


def capture(response: BaseHTTPResponse) -> SubResponse:
    """A handler's response as status, own headers and body bytes."""
    headers = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in _TRANSPORT_HEADERS
    }
    body = response.body or b""
    return SubResponse(response.status, headers, body, response.content_type)


def _headers(parent: Request, sub: SubRequest) -> Header:
    headers = Header(
        (name, value) for name, value in parent.headers.items() if name not in _NOT_INHERITED
    )
    for name, value in sub.headers.items():
        headers[name.lower()] = value
    if sub.body is not None and "content-type" not in headers:
        headers["content-type"] = "application/json"
    return headers


def _synthetic_request(parent: Request, sub: SubRequest, path: str, uow: UnitOfWork) -> Request:
    app = parent.app
    request: Request = app.request_class(
        path.encode(), _headers(parent, sub), parent.version, sub.method, parent.transport, app
    )
    request.body = sub.body or b""
    request.conn_info = parent.conn_info
    # Whatever the outer request's middleware established (identity, request id) carries over.
    for name, value in vars(parent.ctx).items():
        setattr(request.ctx, name, value)
    request.ctx.uow = uow
    request.ctx.parent_request = parent
    return request


async def _call_handler(app: Sanic[Any, Any], request: Request) -> BaseHTTPResponse:
    response: Any
    try:
        route, handler, kwargs = app.router.get(request.path, request.method, None)
        request.route = route
        request._match_info = dict(kwargs)
        response = handler(request, **kwargs)
        if isawaitable(response):
            response = await response
    except Exception as exc:
        response = app.error_handler.response(request, exc)  # type: ignore[no-untyped-call]
        if isawaitable(response):
            response = await response
    if not isinstance(response, BaseHTTPResponse):
        response = problem_for(RuntimeError(f"handler answered {type(response).__name__}"))
    answered: BaseHTTPResponse = response
    return answered


async def dispatch_subrequest(parent: Request, sub: SubRequest, uow: UnitOfWork) -> SubResponse:
    """Run the route `sub` addresses on `uow`, as the single request would run it.

    Routing errors (404, 405) and handler exceptions are answered by the app's own error
    handler, so every body is byte-for-byte what the single request would get. Hooks
    registered with `add_subrequest_hook` wrap each call (logging, tracing).
    """
    try:
        check_subrequest(sub)
        path = normalise_path(sub.path)
    except SubrequestRefused as exc:
        return refused(exc)
    app = parent.app
    limit = int(app.config.REQUEST_MAX_SIZE)
    if sub.body is not None and len(sub.body) > limit:  # as the single request would be
        too_large = PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        return capture(problem_for(too_large))
    try:
        request = _synthetic_request(parent, sub, path, uow)
    except SanicException as exc:  # a URL Sanic cannot parse
        return capture(problem_for(exc))
    hooks: list[SubrequestHook] = getattr(app.ctx, "subrequest_hooks", [])
    if not hooks:
        return _answer(sub, await _call_handler(app, request))
    async with AsyncExitStack() as stack:
        for hook in hooks:
            await stack.enter_async_context(hook(request))
        result = _answer(sub, await _call_handler(app, request))
        request.ctx.subresponse = result
    return result


def _answer(sub: SubRequest, response: BaseHTTPResponse) -> SubResponse:
    answer = capture(response)
    if sub.method == "HEAD":
        answer.body = b""  # as the single HEAD answers: headers only
    return answer


def add_subrequest_hook(app: Sanic[Any, Any], hook: SubrequestHook) -> None:
    """Wrap every sub-request call in `hook(request)`, an async context manager.

    Inside the hook, after its `yield`, `request.ctx.subresponse` holds the SubResponse
    (unless the call raised); `request.ctx.parent_request` is the outer request.
    """
    if not hasattr(app.ctx, "subrequest_hooks"):
        app.ctx.subrequest_hooks = []
    app.ctx.subrequest_hooks.append(hook)
