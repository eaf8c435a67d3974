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

from carpool.auth.rate_limits import RateLimits
from carpool.data import migrations
from carpool.data.engine import Database
from carpool.data.sql import Connection
from carpool.data.unit_of_work import UnitOfWork, Work
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


class Degraded(BaseModel):
    """The primary answers, at head, but something else does not: the instance serves
    what it can and stays in rotation (every instance shares what is missing)."""

    status: Literal["degraded"]
    revision: str | None
    unavailable: list[Literal["replica", "rate-limit storage"]] = Field(
        description="What cannot be reached: reads fail over to nothing (the replica's calls"
        " answer 503), or rate limits follow RATE_LIMIT_ON_STORAGE_ERROR."
    )


class Readiness(RootModel[Ready | Busy | Degraded]):
    """Ready, busy (every connection in use, which is no reason to leave rotation), or
    degraded (the replica or the rate-limit storage is away)."""


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
    cannot be reached or its schema is not at head. 200 `"status": "degraded"` when the
    primary is fine but the replica or the rate-limit storage cannot be reached.

    A busy or degraded instance stays in rotation: taking it out would only load the others
    more (or, for what every instance shares, take them all out).
    """
    uow: Work = request.ctx.uow
    uow.read_on_primary()  # the primary decides readiness; the replica only degrades it
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
    unavailable = await _unavailable_parts(request)
    if unavailable:
        return json_response(
            {"status": "degraded", "revision": current, "unavailable": unavailable}
        )
    return json_response({"status": "ready", "revision": current})


async def _unavailable_parts(request: Request) -> list[str]:
    """What, beside the primary, cannot be reached now: the replica, the rate-limit storage."""
    missing: list[str] = []
    database: Database = request.app.ctx.container.database()
    if database.replica is not None and not await _replica_answers(database):
        missing.append("replica")
    limits: RateLimits | None = request.app.ctx.rate_limits
    if limits is not None:
        async with asyncio.timeout(READY_TIMEOUT_S):
            if not await limits.check():
                missing.append("rate-limit storage")
    return missing


async def _select_one(conn: Connection) -> object:
    return await conn.value("SELECT 1")


async def _replica_answers(database: Database) -> bool:
    """Whether the replica runs a statement (busy counts as answering)."""
    unit = UnitOfWork(database, read_only=True)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await unit.run(_select_one)
    except DatabaseBusy:
        return True
    except Exception as exc:
        log.warning("degraded: the replica is unreachable (%s: %s)", type(exc).__name__, exc)
        return False
    finally:
        await unit.finish(commit=False)
    return True


def _busy(uow: Work, size: int) -> HTTPResponse:
    return json_response({"status": "busy", "pool": uow.pool_figures(size=size).as_dict()})


@functools.cache
def _head_revision() -> str | None:
    # The migration scripts alone define the head: no database URL is needed to read it.
    return migrations.head_revision("")
