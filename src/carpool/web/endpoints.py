"""Route declarations: each route says, next to its handler, what it is and how it may be called.

`@endpoint(...)` registers a handler and records an `Endpoint` on its route (`route.ctx`):
the scope it needs (or `PUBLIC`), whether it may run as a batch item or WebSocket frame,
whether it works on a unit of work, and its API description. Every way of calling a route
(a single request, a batch item, a frame) goes through `call_endpoint`, so whatever must
hold for every call is checked there, once, on the matched route.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any, Final, TypeVar

from pydantic import BaseModel
from sanic import Blueprint
from sanic.request import Request
from sanic.response import BaseHTTPResponse
from sanic_routing import Route

from carpool.errors import PreconditionFailed, Unavailable
from carpool.web import conditional
from carpool.web.access import AUTHENTICATED as AUTHENTICATED
from carpool.web.access import charge, identity_of, refusal, stamp, too_many
from carpool.web.disconnect import until_disconnect
from carpool.web.errors import problem_for
from carpool.web.idempotency import METHODS as IDEMPOTENT_METHODS
from carpool.web.idempotency import idempotent
from carpool.web.unit_scope import READ_AFTER, SAFE_METHODS, unit_scope

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
PUBLIC: Final = None
"""The scope of a route anyone may call."""
# AUTHENTICATED ("*"): the scope of a route any identified caller may call (its parts, batch
# items and frames, check their own scopes).


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented success answer of an operation: what it means, its body's model (if
    any, a pydantic model), an example body, and its headers (name: what it says)."""

    description: str
    model: type[BaseModel] | None = None
    example: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Message:
    """One kind of WebSocket frame a socket route reads (`sent=False`) or writes (`sent=True`);
    a frame read names the messages it may be answered with (`replies`), which carry its id."""

    name: str
    summary: str
    model: type[BaseModel]
    example: Any
    sent: bool = False
    replies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Doc:
    """The API description of an operation, from which the OpenAPI and AsyncAPI documents
    are generated.

    `answers` are the success answers; `errors` the error statuses the handler itself
    raises (those implied by a JSON body, a query model or a write are added by the
    generator). `body` and `query` are the input models (validation-mode JSON Schema);
    `path` optionally narrows the path parameters the route's converters imply. `example`
    gives an example value of each parameter; `body_example` an example body. A socket
    route lists its frames in `messages`. `conditions`: the write evaluates If-Match /
    If-None-Match against the resource it changes (the description then says so).

    What the pipeline does for every call is not stated here: the generator derives it
    from the route's method, unit of work, scope and `conditions` (`web/http_doc.py`).
    """

    operation_id: str
    summary: str
    tag: str
    answers: Mapping[int, Answer] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    body_example: Any = None
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    example: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    messages: tuple[Message, ...] = ()
    conditions: bool = False


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: Sanic hashes route ctx
class Endpoint:
    """What a route declares about itself."""

    uri: str
    methods: tuple[str, ...]
    scope: str | None
    composable: bool
    unit: bool
    websocket: bool
    doc: Doc
    handler: Callable[..., Awaitable[Any]]

    @property
    def public(self) -> bool:
        """Whether anyone may call it, with or without identity."""
        return self.scope is PUBLIC


def endpoint(
    blueprint: Blueprint,
    uri: str,
    *,
    methods: tuple[str, ...] = ("GET",),
    scope: str | None,
    doc: Doc,
    composable: bool = True,
    unit: bool = True,
    websocket: bool = False,
) -> Callable[[H], H]:
    """Register the decorated handler for `uri` and `methods`, declared as an `Endpoint`.

    `scope` is required: the scope a caller needs, or `PUBLIC`. GET also serves HEAD
    (headers only, as RFC 9110 asks). `composable=False` keeps the route out of batches and
    frames; `unit=False` for routes that never touch the database (no unit of work opened).
    """
    if "GET" in methods and "HEAD" not in methods and not websocket:
        methods = (*methods, "HEAD")

    def register(handler: H) -> H:
        declared = Endpoint(uri, methods, scope, composable, unit, websocket, doc, handler)

        @functools.wraps(handler)
        async def single(request: Request, *args: Any, **kwargs: Any) -> Any:
            if not declared.unit:
                return await call_endpoint(request, declared, *args, **kwargs)
            factory = request.app.ctx.unit_of_work
            timing: bool = request.app.ctx.server_timing
            async with unit_scope(factory, method=request.method, server_timing=timing) as scope:
                request.ctx.uow = scope.work
                if READ_AFTER in request.headers:  # it must see a write it made: the primary
                    scope.work.read_on_primary()
                # A client that leaves cancels the call: a 499, so the unit rolls back.
                call = call_endpoint(request, declared, *args, **kwargs)
                return await scope.finish(await until_disconnect(request, call))

        if websocket:
            blueprint.add_websocket_route(single, uri, ctx_endpoint=declared)
        else:
            blueprint.route(uri, methods=methods, ctx_endpoint=declared)(single)
        return handler

    return register


def endpoint_of(route: Route | None) -> Endpoint | None:
    """The declaration of a matched route; None for an undeclared one."""
    if route is None:
        return None
    declared = getattr(route.ctx, "endpoint", None)
    return declared if isinstance(declared, Endpoint) else None


async def call_endpoint(
    request: Request, declared: Endpoint, *args: Any, **kwargs: Any
) -> BaseHTTPResponse:
    """Run the declared handler on `request` (its unit of work, if any, on `request.ctx.uow`).

    First, for every call however it came: the caller's identity (the outer call's), one call
    taken from their rate-limit budget (unless a batch paid for its items up front), and the
    route's declared scope (401 or 403 otherwise). A socket's handshake is let through: each
    of its frames is checked here in turn. Exceptions become the app's error answers here,
    inside the call, so that the unit of work ends by the status the client sees.

    Then HTTP semantics, for every way of calling: an unsafe call with an Idempotency-Key is
    replayed or recorded on its unit of work (`web/idempotency.py`; only once the caller is
    known and allowed, so a key is replayed to its own caller only; batch items cannot carry
    one); a successful read carries its ETag (304 when If-None-Match matches), a write
    answers the ETag of what it answers, and a write that did not evaluate the If-Match /
    If-None-Match it was sent is refused (412), never run unconditionally.
    """
    verdict = None
    ctx = request.ctx
    if declared.scope is not PUBLIC and not declared.websocket:
        # Known already for every batch item and frame (their outer call's): no coroutine.
        identity = ctx.identity
        if identity is None:
            identity = await identity_of(request)
        if declared.scope != AUTHENTICATED and not ctx.charged:
            try:
                verdict = await charge(request, identity)
            except Unavailable as exc:  # the shared budget cannot be read (RATE_LIMIT_ON_...)
                return problem_for(exc)
            if verdict is not None and not verdict.allowed:
                return too_many(verdict)
        refused = refusal(identity, declared.scope)
        if refused is not None:
            stamp(refused, verdict)
            return refused
    work = ctx.uow if declared.unit else None
    if work is None or request.method not in IDEMPOTENT_METHODS:
        response = await _run_handler(request, declared, *args, **kwargs)
    else:
        response = await _idempotent_call(request, declared, work, *args, **kwargs)
    if verdict is not None:
        stamp(response, verdict)
    return response


async def _idempotent_call(
    request: Request, declared: Endpoint, work: Any, *args: Any, **kwargs: Any
) -> BaseHTTPResponse:
    ttl_s: float = request.app.ctx.idempotency_ttl_s
    run = functools.partial(_run_handler, request, declared, *args, **kwargs)
    try:
        return await idempotent(request, work, run, ttl_s=ttl_s)
    except Exception as exc:  # the key's own statements failed (the call itself never raises)
        return await _error_response(request, exc)


async def _run_handler(
    request: Request, declared: Endpoint, *args: Any, **kwargs: Any
) -> BaseHTTPResponse:
    # A read evaluates no conditions itself (`finish_read` does): its handler makes them only
    # if it asks (`conditional.preconditions_of`), rather than every read making them.
    preconditions = (
        None if request.method in SAFE_METHODS else conditional.Preconditions.of(request.headers)
    )
    request.ctx.preconditions = preconditions
    response: Any
    try:
        response = await declared.handler(request, *args, **kwargs)
    except Exception as exc:
        response = await _error_response(request, exc)
    if declared.websocket:
        return response  # type: ignore[no-any-return]
    if not isinstance(response, BaseHTTPResponse):
        response = problem_for(RuntimeError(f"handler answered {type(response).__name__}"))
    if preconditions is None:  # a read
        try:
            return conditional.finish_read(request.method, request.headers, response)
        except PreconditionFailed as exc:
            return await _error_response(request, exc)
    if preconditions.present and not preconditions.evaluated and response.status < 400:
        return await _error_response(request, conditional.unevaluated(request.method))
    return conditional.stamp_written(request.method, response)


async def _error_response(request: Request, exc: Exception) -> BaseHTTPResponse:
    response = request.app.error_handler.response(request, exc)  # type: ignore[no-untyped-call]
    if isawaitable(response):
        response = await response
    return response  # type: ignore[no-any-return]
