"""The app factory: composition of carpool's parts into a Sanic app, wired to its container.

This is the package's entrypoint: it imports every layer, and no layer imports it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

import orjson
from sanic import Sanic
from sanic.asgi import ASGIApp
from sanic.request import Request

from carpool import catalog
from carpool.catalog import examples
from carpool.compose.batch import batch_routes
from carpool.compose.dispatch import add_subrequest_hook
from carpool.compose.examples import CallExamples
from carpool.compose.live import LiveHub
from carpool.compose.websocket import websocket_routes
from carpool.context import AppContext
from carpool.data.faults import pool_figures
from carpool.observability import logs, metrics, tracing
from carpool.settings import Settings
from carpool.web import health, middleware, shutdown
from carpool.web.client_assets import blueprint as client_assets
from carpool.web.cors import CorsPolicy
from carpool.web.errors import ProblemErrorHandler
from carpool.web.front_door import CallerSockets, FrontDoor
from carpool.web.metrics import metrics_routes
from carpool.web.openapi.routes import blueprint as openapi_routes
from carpool.web.request import CarpoolRequest

if TYPE_CHECKING:  # the package never imports the composition root at run time
    from container import Container


_REQUEST_EVENT = "http.lifecycle.request"


async def _nothing() -> None:
    return None


class CarpoolApp(Sanic[Any, AppContext]):
    """Sanic behind its front door (CORS, security headers, WebSocket handshakes), running
    each request inside its server span when tracing is on.

    Sanic's ASGI adapter dispatches the `http.lifecycle.request` signal for every request,
    even when nothing listens (TouchUp removes such dispatches from the HTTP server's path,
    not from the ASGI one); looking up and failing to find a listener cost about a tenth of
    a one-row GET. With no listener, the dispatch is skipped.
    """

    __slots__ = ("_request_event_heard",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._request_event_heard: bool | None = None  # settled once the router is final
        super().__init__(*args, **kwargs)

    def dispatch(self, event: str, **kwargs: Any) -> Any:
        if event == _REQUEST_EVENT and not self._hears_request_event():
            return _nothing()
        return super().dispatch(event, **kwargs)

    def _hears_request_event(self) -> bool:
        heard = self._request_event_heard
        if heard is None:
            if not self.signal_router.finalized:
                return True  # listeners may still come: dispatch as Sanic would
            names = {route.name for route in self.signal_router.routes}
            heard = self._request_event_heard = _REQUEST_EVENT in names
        return heard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        door: FrontDoor | None = self.ctx.front_door
        if door is None or scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)  # type: ignore[no-untyped-call]
            return
        if scope["type"] != "http":
            await door(scope, receive, send, super().__call__)
            return
        try:
            await door(scope, receive, send, self._serve_http)
        except asyncio.CancelledError as exc:
            # uvicorn's graceful-shutdown timeout cut the call (a client that leaves is
            # handled inside, web/disconnect.py). It has rolled back; answer so rather than
            # let uvicorn send its plain-text 500 with a traceback.
            if not shutdown.cut_at_shutdown(exc) or not await shutdown.answer_cut_call(send):
                raise

    async def _serve_http(self, scope: Any, receive: Any, send: Any) -> None:
        """What Sanic's `__call__` does for an HTTP request, then the cycles it leaves broken.

        Sanic links its ASGI adapter, the request and the response both ways; left so, every
        request is freed only by the cyclic garbage collector, whose passes over them took
        15-20% of the CPU under load. Unlinked at the end, they go when the call does
        (tests/web/test_garbage.py).
        """
        asgi_app = await ASGIApp.create(self, scope, receive, send)
        try:
            await asgi_app()
        finally:
            request = getattr(asgi_app, "request", None)
            if request is not None:
                request.stream = None
            if asgi_app.response is not None:
                asgi_app.response.stream = None
            asgi_app.request = asgi_app.response = None  # type: ignore[assignment]

    async def handle_request(self, request: Request) -> None:
        # When the request started (its log line's duration) and its id: here rather than in
        # a request middleware, whose runner cost more than all it did (3% of a GET).
        logs.mark_start(request)
        traced: tracing.RequestTracing | None = self.ctx.tracing
        if traced is None:
            await super().handle_request(request)
            return
        with traced.request_span(request):
            await super().handle_request(request)


# Allocations (net of frees) between two collections of the youngest generation (Python: 700).
GC_YOUNG_THRESHOLD = 10_000


def create_app(container: Container, *, name: str = "carpool") -> CarpoolApp:
    """Build the app; the container's resources start and stop with the ASGI lifespan."""
    settings: Settings = container.settings()
    app = CarpoolApp(
        name,
        dumps=orjson.dumps,
        loads=orjson.loads,
        request_class=CarpoolRequest,
        ctx=AppContext(),
        error_handler=ProblemErrorHandler(),
        configure_logging=False,
    )
    app.config.REQUEST_MAX_SIZE = settings.request_max_bytes
    app.config.JSON_MAX_DEPTH = settings.json_max_depth
    app.config.REQUEST_READ_TIMEOUT = settings.request_read_timeout_s
    app.config.ACCESS_LOG = settings.access_log
    app.config.MOTD = False
    app.ctx.container = container
    # Every endpoint's unit-of-work scope takes its units from here (one new unit per call).
    app.ctx.unit_of_work = container.unit_of_work
    app.ctx.idempotency_ttl_s = settings.idempotency_ttl_s
    _secure(app, container, settings)
    logs.configure_logging(settings.log_level)

    app.blueprint(health.blueprint)
    app.blueprint(catalog.blueprints())
    calls = CallExamples(
        examples.BATCH, examples.BATCH_ANSWER, examples.GET_GROMMET, examples.GROMMET
    )
    app.blueprint(batch_routes(settings, calls))
    app.blueprint(websocket_routes(settings, calls))
    app.blueprint(openapi_routes)
    app.blueprint(client_assets)
    app.blueprint(metrics_routes(scope=settings.metrics_scope))
    middleware.install(app, request_log=settings.request_log)
    _observe(app, container, settings)

    @app.before_server_start
    async def start_resources(app: Sanic[Any, Any]) -> None:
        await _awaited(container.init_resources())
        # Its HTTP session is an async Resource, so the Factory answers an awaitable.
        app.ctx.inventory = await _awaited(container.inventory())
        # Its JWKS keys (if any) come through the same HTTP session.
        app.ctx.identifier = await _awaited(container.identifier())
        # Live answers of this worker: subscriptions over /ws, re-run as changes commit.
        listener = await _awaited(container.change_listener())
        # Re-runs follow changes committed on the primary: they read there, never from a
        # replica that may not have replayed the change yet (DATABASE_READ_URL).
        primary_units = functools.partial(container.unit_of_work, on_primary=True)
        app.ctx.live = LiveHub(
            listener,
            primary_units,
            max_total=settings.live_max_subscriptions,
            max_per_caller=settings.per_caller_subscriptions,
        )
        app.ctx.pool_sampler = await _sample_pool(container, settings)

    @app.after_server_start
    async def freeze_startup_heap(app: Sanic[Any, Any]) -> None:
        # What startup made lives as long as the worker: out of the cyclic collector's reach,
        # its full collections stop walking a million objects (200 ms pauses under load).
        gc.collect()
        gc.freeze()
        # A call leaves no reference cycles (tests/web/test_garbage.py): what it made is freed as
        # it ends, and the collector only walks the objects of calls in flight. Walking them
        # every 700 allocations took a sixth of the CPU under load; every 10,000 (a pause of
        # about 2 ms), under 2 % (docs/performance.md).
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    @app.after_server_stop
    async def stop_resources(app: Sanic[Any, Any]) -> None:
        app.ctx.pool_sampler.cancel()
        await _awaited(container.shutdown_resources())

    return app


async def _awaited(value: Any) -> Any:
    """`value`, awaited if it is awaitable (async providers answer awaitables)."""
    return await value if isawaitable(value) else value


def _secure(app: CarpoolApp, container: Container, settings: Settings) -> None:
    """Identity, rate limits, CORS, socket limits (see docs/security.md)."""
    app.ctx.identifier = None  # until the resources have started: every caller is anonymous
    app.ctx.rate_limits = container.rate_limits()
    app.ctx.server_timing = settings.server_timing
    sockets = CallerSockets(settings.ws_max_connections_per_caller)
    app.ctx.caller_sockets = sockets
    identifier = lambda: app.ctx.identifier  # noqa: E731
    anonymous = CallerSockets(settings.ws_max_anonymous_per_address)
    app.ctx.front_door = FrontDoor(
        CorsPolicy(settings.origins), sockets, identifier, anonymous=anonymous
    )


async def _sample_pool(container: Container, settings: Settings) -> asyncio.Task[None]:
    """Keep the pool gauges of /metrics current (a task, cancelled at shutdown)."""
    database = container.database()
    size = settings.db_pool_size + settings.db_max_overflow
    return asyncio.create_task(
        metrics.sample_pool(
            lambda: pool_figures(database.primary, size=size), every_s=metrics.POOL_SAMPLE_EVERY_S
        )
    )


def _observe(app: CarpoolApp, container: Container, settings: Settings) -> None:
    """Logs, traces and metrics: for single requests, and for every batch item and frame."""
    traced = tracing.install(app, container.tracer_provider())
    if traced is not None:
        add_subrequest_hook(app, traced.subrequest_span)
    # The request log notes batch items and frames itself (`logs.ItemJournal`): no hook.
    app.ctx.request_log = settings.request_log
    app.ctx.request_log_items = settings.request_log_items
    metrics.configure(enabled=settings.metrics)
