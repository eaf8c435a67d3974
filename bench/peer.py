"""The peer a user would pick instead of carpool: plain Starlette with raw asyncpg.

Bench-only (the `bench` extra). `bench/throughput.py` serves it next to carpool, on the same
uvicorn settings (one worker, uvloop, httptools, no access log) and the same PostgreSQL:

    DATABASE_URL=postgresql://... uvicorn peer:app --app-dir bench --workers 1 \
        --loop uvloop --http httptools --no-access-log

It answers the same JSON as carpool (orjson, UTC timestamps ending in Z), byte for byte for
the reads, with the least code a user would write: a pool made in the lifespan with asyncpg's
defaults (its reset query on release included), statements sent as text, rows as records.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

GROMMET = "id, name, material, diameter_mm, supplier_id, created_at, updated_at"
SELECT_GROMMET = f"SELECT {GROMMET} FROM grommets WHERE id = $1"
SELECT_GROMMETS = f"SELECT {GROMMET} FROM grommets WHERE id = ANY($1::bigint[])"
SELECT_WIDGET = "SELECT id, name, created_at, updated_at FROM widgets WHERE id = $1"
SELECT_PARTS = (
    "SELECT grommet_id, quantity FROM widget_parts WHERE widget_id = $1 ORDER BY grommet_id"
)
INSERT_GROMMET = (
    f"INSERT INTO grommets (name, material, diameter_mm) VALUES ($1, $2, $3) RETURNING {GROMMET}"
)
# The same ceiling as carpool's pool (DB_POOL_SIZE 10 + DB_MAX_OVERFLOW 10).
POOL_MAX = int(os.environ.get("PEER_POOL_MAX", "20"))


def _dsn() -> str:
    url = os.environ["DATABASE_URL"]
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


def _not_found(what: str) -> Response:
    return ORJSONResponse({"status": 404, "detail": f"{what} does not exist"}, status_code=404)


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def get_grommet(request: Request) -> Response:
    """One SELECT on a pooled connection, no transaction."""
    grommet_id = request.path_params["id"]
    row = await _pool(request).fetchrow(SELECT_GROMMET, grommet_id)
    if row is None:
        return _not_found(f"grommet {grommet_id}")
    return ORJSONResponse(dict(row))


async def get_grommet_tx(request: Request) -> Response:
    """The same SELECT inside a READ ONLY transaction: BEGIN READ ONLY, SELECT, COMMIT."""
    grommet_id = request.path_params["id"]
    async with _pool(request).acquire() as conn, conn.transaction(readonly=True):
        row = await conn.fetchrow(SELECT_GROMMET, grommet_id)
    if row is None:
        return _not_found(f"grommet {grommet_id}")
    return ORJSONResponse(dict(row))


async def get_widget(request: Request) -> Response:
    """The three reads carpool does: the widget, its parts, the grommets those parts name."""
    widget_id = request.path_params["id"]
    include = "grommets" in request.query_params.get("include", "").split(",")
    async with _pool(request).acquire() as conn:
        widget = await conn.fetchrow(SELECT_WIDGET, widget_id)
        if widget is None:
            return _not_found(f"widget {widget_id}")
        parts: list[dict[str, Any]] = [
            dict(row) for row in await conn.fetch(SELECT_PARTS, widget_id)
        ]
        if include and parts:
            ids = sorted({part["grommet_id"] for part in parts})
            found = {row["id"]: dict(row) for row in await conn.fetch(SELECT_GROMMETS, ids)}
            parts = [{"grommet": found[p["grommet_id"]], "quantity": p["quantity"]} for p in parts]
    return ORJSONResponse(
        {
            "id": widget["id"],
            "name": widget["name"],
            "parts": parts,
            "created_at": widget["created_at"],
            "updated_at": widget["updated_at"],
        }
    )


async def create_grommet(request: Request) -> Response:
    """One INSERT ... RETURNING inside a transaction (committed), 201 with its location."""
    try:
        body = orjson.loads(await request.body())
        name, material = body["name"], body["material"]
        diameter = float(body["diameter_mm"])
        if not isinstance(name, str) or not isinstance(material, str) or not diameter > 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return ORJSONResponse({"status": 422, "detail": "invalid grommet"}, status_code=422)
    try:
        async with _pool(request).acquire() as conn, conn.transaction():
            row = await conn.fetchrow(INSERT_GROMMET, name, material, diameter)
    except asyncpg.UniqueViolationError:
        detail = f'a grommet named "{name}" already exists'
        return ORJSONResponse({"status": 409, "detail": detail}, status_code=409)
    return ORJSONResponse(
        dict(row), status_code=201, headers={"location": f"/grommets/{row['id']}"}
    )


async def health(request: Request) -> Response:
    return ORJSONResponse({"status": "ok"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with asyncpg.create_pool(_dsn(), min_size=10, max_size=POOL_MAX) as pool:
        app.state.pool = pool
        yield


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/grommets/{id:int}", get_grommet),
        Route("/grommets-tx/{id:int}", get_grommet_tx),
        Route("/widgets/{id:int}", get_widget),
        Route("/grommets", create_grommet, methods=["POST"]),
    ],
    lifespan=lifespan,
)
