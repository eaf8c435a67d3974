"""Run one route handler as a plain function on a synthetic request, and capture its answer."""

from __future__ import annotations

import contextlib
import posixpath
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any
from urllib.parse import quote, unquote

from sanic import Sanic
from sanic.compat import Header
from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge, SanicException
from sanic.request import Request
from sanic.response import BaseHTTPResponse
from sanic_routing import Route

from carpool.data.unit_of_work import Work
from carpool.observability import logs, metrics
from carpool.route_names import route_of, template
from carpool.web.conditional import CONDITIONAL_HEADERS
from carpool.web.endpoints import call_endpoint, endpoint_of
from carpool.web.errors import problem_for
from carpool.web.responses import problem_response

# Headers an item may not set: its identity is its outer request's.
FORBIDDEN_HEADERS = frozenset({"authorization", "cookie"})
# Headers that describe the outer request's transport or body, never an item's.
# Nor the outer call's conditions and idempotency key: they are about the batch (or socket),
# and an item's own conditions are set on the item ("If-Match": "{{g/headers/etag}}").
_NOT_INHERITED = frozenset(
    {"content-length", "content-type", "transfer-encoding", "upgrade", "idempotency-key"}
    | CONDITIONAL_HEADERS
)
# Response headers that are transport, not the handler's own. (Server-Timing is stamped by
# the unit-of-work scope of the outer call only: a frame's answer keeps it, an item has none.)
_TRANSPORT_HEADERS = frozenset({"content-type", "content-length", "connection"})
# What an HTTP request can carry: a header name is a token (RFC 9110), a value holds no
# control character but tab; a path goes on the wire as printable ASCII (the rest is encoded).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_WIRE_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
# A path `normalise_path` leaves as it is: segments of letters, digits, `_`, `~` and `-` (no
# `.`, `%` or empty ones), an optional trailing slash, a query of printable ASCII but `#`.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_~-]+)+/?(?:\?[\x21\x22\x24-\x7e]*)?")

SubrequestHook = Callable[[Request], AbstractAsyncContextManager[None]]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a call per field
class SubRequest:
    """One request to run inside another: method, path (with query), own headers, body bytes."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    sent_size: int | None = None
    """At most how many bytes the client sent `body` in (it was decoded and encoded again:
    `9e15` comes back longer); None: `len(body)`. What the body limit is held to."""


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
    if _PLAIN_PATH.fullmatch(path):  # nothing to encode or resolve: most items' paths
        return path
    raw, sep, query = quote(path, safe=_WIRE_SAFE).partition("?")
    if not raw.startswith("/"):
        raise SubrequestRefused(f"the path {path!r} must start with /")
    clean = posixpath.normpath(raw)
    clean = "/" + clean.lstrip("/")
    if raw.endswith("/") and clean != "/":
        clean += "/"
    return clean + sep + query


def check_subrequest(sub: SubRequest) -> None:
    """Raise SubrequestRefused if `sub` could not be sent as an HTTP request of its own.

    Which routes may run inside a batch or a frame is decided on the matched route, later.
    """
    if "#" in sub.path:
        # A fragment never reaches a server; the router would silently drop it.
        raise SubrequestRefused(f"the path {sub.path!r} has a fragment (#), which no server sees")
    for name, value in sub.headers.items():
        if name.lower() in FORBIDDEN_HEADERS:
            raise SubrequestRefused(f"an item may not set the {name} header")
        if not _HEADER_NAME.fullmatch(name) or _CONTROL.search(value):
            raise SubrequestRefused(f"the header {name!r} could not be sent in an HTTP request")


def _refused_response(exc: SubrequestRefused) -> BaseHTTPResponse:
    return problem_response(400, str(exc), type_="urn:carpool:problem:refused-item")


def refused(exc: SubrequestRefused) -> SubResponse:
    """The 400 answer of an item that was refused before it ran."""
    return capture(_refused_response(exc))


def capture(response: BaseHTTPResponse) -> SubResponse:
    """A handler's response as status, own headers and body bytes."""
    headers = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in _TRANSPORT_HEADERS
    }
    body = response.body or b""
    return SubResponse(response.status, headers, body, response.content_type)


@dataclass(slots=True)
class _Outer:
    """What every sub-request of one outer request shares, worked out once, not per item."""

    inherited: list[tuple[str, str]]  # the outer request's headers that items inherit
    plain: Header  # the headers of an item that sets none and has no body
    body_limit: int  # REQUEST_MAX_SIZE: an item's body may be no larger than a request's
    transport: str  # as /metrics counts it: "frame" (a socket's) or "batch_item"


def _outer(parent: Request) -> _Outer:
    # Kept on the outer request itself (`CarpoolRequest.composed`): no weak mapping per item.
    found: _Outer | None = getattr(parent, "composed", None)
    if found is None:
        inherited = [
            (name, value) for name, value in parent.headers.items() if name not in _NOT_INHERITED
        ]
        route = parent.route
        socket = route is not None and bool(getattr(route.extra, "websocket", False))
        found = _Outer(
            inherited,
            Header(inherited),
            int(parent.app.config.REQUEST_MAX_SIZE),
            "frame" if socket else "batch_item",
        )
        parent.composed = found  # type: ignore[attr-defined]
    return found


def _headers(outer: _Outer, sub: SubRequest) -> Header:
    if not sub.headers and sub.body is None:
        return outer.plain  # shared: nothing writes a request's headers
    headers = Header(outer.inherited)
    for name, value in sub.headers.items():
        headers[name.lower()] = value
    if sub.body is not None and "content-type" not in headers:
        headers["content-type"] = "application/json"
    return headers


def _synthetic_request(
    parent: Request, outer: _Outer, sub: SubRequest, path: str, work: Work, *, charged: bool
) -> Request:
    app = parent.app
    request: Request = app.request_class(
        path.encode(), _headers(outer, sub), parent.version, sub.method, parent.transport, app
    )
    request.body = sub.body or b""
    request.conn_info = parent.conn_info
    # Whatever the outer call established (its caller's identity, request id) carries over.
    context = vars(request.ctx)
    context.update(vars(parent.ctx))
    context["uow"] = work
    context["charged"] = charged
    context["parent_request"] = parent
    return request


def _route_call(app: Sanic[Any, Any], request: Request) -> Awaitable[BaseHTTPResponse]:
    """Route `request`; the call of its endpoint, if it may run inside another call.

    A plain function returning the endpoint's own coroutine: one coroutine fewer per item.
    """
    try:
        route, _, kwargs = app.router.get(request.path, request.method, None)
    except (NotFound, MethodNotAllowed) as exc:
        # A route that may not run here, under another spelling or method (`/BATCH`,
        # `/%62atch`, `POST /ws`), is refused as a nested call, not merely "not found".
        hidden = _uncomposable_lookalike(app, request.path)
        if hidden is not None:
            return _ready(_refused_response(_not_composable(hidden)))
        return _error_answer(app, request, exc)
    declared = endpoint_of(route)
    if declared is None or not declared.composable:
        # Decided on the route that matched, however its path was spelled.
        return _ready(_refused_response(_not_composable(route)))
    request.route = route
    request._match_info = dict(kwargs)
    return call_endpoint(request, declared, **kwargs)


async def _ready(response: BaseHTTPResponse) -> BaseHTTPResponse:
    return response


_ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _composable(route: Route) -> bool:
    declared = endpoint_of(route)
    return declared is not None and declared.composable


def _not_composable(route: Route) -> SubrequestRefused:
    where = template(route.uri)
    return SubrequestRefused(f"{where} cannot be called from inside a batch or a frame")


def _uncomposable_lookalike(app: Sanic[Any, Any], path: str) -> Route | None:
    """A route that may not run as a sub-request, matched by some spelling of `path` (decoded,
    normalised, lower-cased, without a trailing slash) with any method; else None."""
    decoded = normalise_path(unquote(path.partition("?")[0]).partition("#")[0])
    bare = decoded.rstrip("/") or "/"
    spellings = {decoded, decoded.lower(), bare, bare.lower()}
    for spelling in spellings:
        for method in _ANY_METHOD:
            with contextlib.suppress(Exception):
                route: Route = app.router.get(spelling, method, None)[0]
                if not _composable(route):
                    return route
    return None


async def _error_answer(app: Sanic[Any, Any], request: Request, exc: Exception) -> BaseHTTPResponse:
    response = app.error_handler.response(request, exc)  # type: ignore[no-untyped-call]
    answered: BaseHTTPResponse = await response if isawaitable(response) else response
    return answered


async def dispatch_subrequest(
    parent: Request,
    sub: SubRequest,
    work: Work,
    *,
    charged: bool = False,
    tally: metrics.CallTally | None = None,
    journal: logs.ItemJournal | None = None,
) -> SubResponse:
    """Run the route `sub` addresses on `work`, as the single request would run it.

    The caller is the outer call's (`parent.ctx.identity`), checked against the matched
    route's scope as a single call is. `charged=True`: the call was paid for in advance (a
    batch's items), so it takes nothing more from the caller's rate-limit budget.

    `work` is borrowed: nothing the route does can finish it. A route declared not
    composable (`/batch`, `/ws`, the probes, the docs) is a 400 answer, decided on the
    matched route, never on the path string.

    Routing errors (404, 405) and handler exceptions are answered by the app's own error
    handler, so every body is byte-for-byte what the single request would get. Hooks
    registered with `add_subrequest_hook` wrap each call (tracing); each call is counted in
    /metrics (`transport` "batch_item" or "frame"), through `tally` if given (the caller
    flushes it), and noted in `journal` (the request log's) if given, refused ones too.
    """
    started = time.perf_counter() if journal is not None else 0.0
    try:
        check_subrequest(sub)
        path = normalise_path(sub.path)
    except SubrequestRefused as exc:
        return _noted(journal, sub, refused(exc), started)
    outer = _outer(parent)
    limit = outer.body_limit
    # As the single request would be: on the bytes the client sent, not their re-encoding.
    if sub.body is not None and len(sub.body) > limit and (sub.sent_size or limit + 1) > limit:
        too_large = PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        return _noted(journal, sub, capture(problem_for(too_large)), started)
    try:
        request = _synthetic_request(parent, outer, sub, path, work, charged=charged)
    except SanicException as exc:  # a URL Sanic cannot parse
        return _noted(journal, sub, capture(problem_for(exc)), started)
    app = parent.app
    hooks = _active_hooks(app)
    count = metrics.count_call if tally is None else tally.count
    try:
        if hooks:
            answer = await _within(hooks, request, app, sub)
        else:
            answer = _answer(sub, await _route_call(app, request))
    except Exception:
        count(request, 500, outer.transport)
        if journal is not None:
            journal.note(sub.method, route_of(request), request.path, 500, started)
        raise
    count(request, answer.status, outer.transport)
    if journal is not None:
        journal.note(sub.method, route_of(request), request.path, answer.status, started)
    return answer


def _noted(
    journal: logs.ItemJournal | None, sub: SubRequest, answer: SubResponse, started: float
) -> SubResponse:
    """`answer`, of an item refused before it was routed, noted in `journal` (if any)."""
    if journal is not None:
        journal.note(sub.method, None, sub.path.partition("?")[0], answer.status, started)
    return answer


def _active_hooks(app: Sanic[Any, Any]) -> list[SubrequestHook]:
    """The hooks that have something to do now (none, most of the time).

    A hook with an `active()` (the log line's: is INFO on?) is skipped while it says no,
    rather than entered for every item and frame.
    """
    hooks: list[tuple[SubrequestHook, Callable[[], bool] | None]] | None
    hooks = app.ctx.subrequest_hooks
    if not hooks:
        return []
    return [hook for hook, active in hooks if active is None or active()]


async def _within(
    hooks: list[SubrequestHook], request: Request, app: Sanic[Any, Any], sub: SubRequest
) -> SubResponse:
    """The call inside every hook, the first one outermost.

    Nested `async with`, not an AsyncExitStack: hooks wrap every item and frame, and an exit
    stack built per call cost a tenth of a batch.
    """
    async with hooks[0](request):
        if len(hooks) > 1:
            return await _within(hooks[1:], request, app, sub)
        result = _answer(sub, await _route_call(app, request))
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
    if app.ctx.subrequest_hooks is None:
        app.ctx.subrequest_hooks = []
    # With its `active` (if any) looked up once, not per item.
    app.ctx.subrequest_hooks.append((hook, getattr(hook, "active", None)))
