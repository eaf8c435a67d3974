"""The app factory: a Sanic app wired to the container it is handed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import orjson
from sanic import Sanic
from sanic.request import Request

from carpool.catalog.availability_routes import blueprint as availability_routes
from carpool.catalog.routes import blueprint as catalog_routes
from carpool.compose.batch import batch_routes
from carpool.compose.dispatch import add_subrequest_hook
from carpool.compose.websocket import websocket_routes
from carpool.data.unit_of_work import UnitOfWork
from carpool.observability import logs, tracing
from carpool.settings import Settings
from carpool.web import health, middleware
from carpool.web.errors import ProblemErrorHandler
from carpool.web.openapi.routes import blueprint as openapi_routes
from carpool.web.request import CarpoolRequest

_names = itertools.count()


class CarpoolApp(Sanic[Any, Any]):
    """Sanic, plus a last-resort finalisation of the request's unit of work.

    The response middleware finalises it on every normal ending; this catches the rest
    (cancellation, a failure while sending) so that no connection is ever leaked. With
    tracing on, each request runs inside its server span (ended after the answer is sent).
    """

    async def handle_request(self, request: Request) -> None:
        traced: tracing.RequestTracing | None = getattr(self.ctx, "tracing", None)
        try:
            if traced is None:
                await super().handle_request(request)
            else:
                with traced.request_span(request):
                    await super().handle_request(request)
        finally:
            uow: UnitOfWork | None = getattr(request.ctx, "uow", None)
            if uow is not None and not uow.finished:
                await _roll_back(uow)


async def _roll_back(uow: UnitOfWork) -> None:
    """Roll back and release `uow`, even if the request is cancelled (again) meanwhile."""
    # A shielded loader fetch may still hold the unit's connection; if a second
    # cancellation (a server shutting down) abandoned the wait, the connection would leak.
    finishing = asyncio.ensure_future(uow.finish(commit=False))
    finishing.add_done_callback(_outcome_seen)
    with contextlib.suppress(Exception):
        await asyncio.shield(finishing)


def _outcome_seen(task: asyncio.Future[None]) -> None:
    # Nobody may be left to await it: retrieve its error so asyncio does not report it.
    if not task.cancelled():
        task.exception()


def create_app(container: Any, *, name: str | None = None) -> Sanic[Any, Any]:
    """Build the app; resources start and stop with the ASGI lifespan."""
    settings: Settings = container.settings()
    serial = next(_names)
    app = CarpoolApp(
        name or f"carpool{serial or ''}",
        dumps=orjson.dumps,
        loads=orjson.loads,
        request_class=CarpoolRequest,
        error_handler=ProblemErrorHandler(),
        configure_logging=False,
    )
    app.config.REQUEST_MAX_SIZE = settings.request_max_bytes
    app.config.ACCESS_LOG = settings.access_log
    app.config.MOTD = False
    # Sanic's TouchUp rewrites shared classes in place, once: a second app in the same
    # process (tests build several) must not run it again.
    app.config.TOUCHUP = serial == 0
    app.ctx.container = container
    logs.configure_logging(settings.log_level)

    app.blueprint(health.blueprint)
    app.blueprint(catalog_routes)
    app.blueprint(availability_routes)
    app.blueprint(batch_routes(settings))
    app.blueprint(websocket_routes(settings))
    app.blueprint(openapi_routes)
    middleware.install(app, container.unit_of_work, request_log=settings.request_log)
    tracing.install(app, container.tracer_provider())
    if settings.request_log:
        add_subrequest_hook(app, logs.log_subrequest)

    @app.before_server_start
    async def start_resources(app: Sanic[Any, Any]) -> None:
        await container.init_resources()
        app.ctx.inventory = await container.inventory()

    @app.after_server_stop
    async def stop_resources(app: Sanic[Any, Any]) -> None:
        await container.shutdown_resources()

    return app
