"""The app factory: a Sanic app wired to the container it is handed."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import orjson
from sanic import Sanic
from sanic.request import Request

from carpool.catalog.routes import blueprint as catalog_routes
from carpool.data.unit_of_work import UnitOfWork
from carpool.settings import Settings
from carpool.web import health, middleware
from carpool.web.errors import ProblemErrorHandler
from carpool.web.request import CarpoolRequest

_names = itertools.count()


class CarpoolApp(Sanic[Any, Any]):
    """Sanic, plus a last-resort finalisation of the request's unit of work.

    The response middleware finalises it on every normal ending; this catches the rest
    (cancellation, a failure while sending) so that no connection is ever leaked.
    """

    async def handle_request(self, request: Request) -> None:
        try:
            await super().handle_request(request)
        finally:
            uow: UnitOfWork | None = getattr(request.ctx, "uow", None)
            if uow is not None:
                with contextlib.suppress(Exception):
                    await uow.finish(commit=False)


def create_app(container: Any, *, name: str | None = None) -> Sanic[Any, Any]:
    """Build the app; resources start and stop with the ASGI lifespan."""
    settings: Settings = container.settings()
    app = CarpoolApp(
        name or f"carpool{next(_names) or ''}",
        dumps=orjson.dumps,
        loads=orjson.loads,
        request_class=CarpoolRequest,
        error_handler=ProblemErrorHandler(),
        configure_logging=False,
    )
    app.config.REQUEST_MAX_SIZE = settings.request_max_bytes
    app.config.ACCESS_LOG = settings.access_log
    app.config.MOTD = False
    app.ctx.container = container

    app.blueprint(health.blueprint)
    app.blueprint(catalog_routes)
    middleware.install(app, container.unit_of_work)

    @app.before_server_start
    async def start_resources(app: Sanic[Any, Any]) -> None:
        await container.init_resources()

    @app.after_server_stop
    async def stop_resources(app: Sanic[Any, Any]) -> None:
        await container.shutdown_resources()

    return app
