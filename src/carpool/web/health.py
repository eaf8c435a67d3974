"""Liveness (`/health`: no database touch) and readiness (`/ready`: database up, schema at head)."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Literal

from pydantic import BaseModel, Field, RootModel
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.data import migrations
from carpool.data.unit_of_work import Work
from carpool.errors import DatabaseBusy, DatabaseUnavailable, Unavailable
from carpool.web.endpoints import PUBLIC, Answer, Doc, endpoint
from carpool.web.responses import json_response

blueprint = Blueprint("health")
log = logging.getLogger("carpool.health")
# A readiness probe must answer, not wait for the pool or a hung server for long.
READY_TIMEOUT_S = 5.0


class Health(BaseModel):
    """The process serves."""

    status: Literal["ok"]


class Ready(BaseModel):
    """The database answers, its schema at the migrations' head."""

    status: Literal["ready"]
    revision: str | None


class PoolFigures(BaseModel):
    """How the connection pool stands."""

    size: int = Field(ge=0, description="Connections it may open.")
    in_use: int = Field(ge=0)
    waiting: int = Field(ge=0, description="Callers waiting for a connection.")


class Busy(BaseModel):
    """Every connection is in use: the instance stays in rotation."""

    status: Literal["busy"]
    pool: PoolFigures


class Readiness(RootModel[Ready | Busy]):
    """Ready, or busy (every connection in use, which is no reason to leave rotation)."""


@endpoint(
    blueprint,
    "/health",
    scope=PUBLIC,
    composable=False,
    unit=False,
    doc=Doc(
        "health",
        "Liveness: the process serves (touches no database)",
        "operations",
        answers={200: Answer("Up.", Health, {"status": "ok"})},
    ),
)
async def health(request: Request) -> HTTPResponse:
    """The process is up and serving."""
    return json_response({"status": "ok"})


@endpoint(
    blueprint,
    "/ready",
    scope=PUBLIC,
    composable=False,
    doc=Doc(
        "ready",
        "Readiness: the database answers and its schema is at the migrations' head",
        "operations",
        answers={
            200: Answer("Ready, or busy.", Readiness, {"status": "ready", "revision": "0001"})
        },
        errors=(503,),
    ),
)
async def ready(request: Request) -> HTTPResponse:
    """200 if the database answers and its schema is at the migrations' head, or if every
    connection is busy (`"status": "busy"`, with the pool's figures); 503 if the database
    cannot be reached or its schema is not at head.

    A busy instance stays in rotation: taking it out would only load the others more.
    """
    uow: Work = request.ctx.uow
    settings = request.app.ctx.container.settings()
    size = settings.db_pool_size + settings.db_max_overflow
    head = await asyncio.to_thread(_head_revision)
    if uow.pool_figures(size=size).saturated:  # a probe does not queue for a connection
        return _busy(uow, size)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            current = await uow.run(migrations.current_revision)
    except DatabaseBusy:
        return _busy(uow, size)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and uow.pool_figures(size=size).saturated:
            return _busy(uow, size)
        log.warning("not ready: database unreachable (%s: %s)", type(exc).__name__, exc)
        raise DatabaseUnavailable("The database is unreachable.") from None
    if current != head:
        raise Unavailable(
            f"The database schema is at revision {current or 'none'};"
            f" this build needs {head}. Run the migrations."
        )
    return json_response({"status": "ready", "revision": current})


def _busy(uow: Work, size: int) -> HTTPResponse:
    return json_response({"status": "busy", "pool": uow.pool_figures(size=size).as_dict()})


@functools.cache
def _head_revision() -> str | None:
    # The migration scripts alone define the head: no database URL is needed to read it.
    return migrations.head_revision("")
