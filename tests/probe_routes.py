"""Test-only routes that drive the unit of work into each of its endings."""

from __future__ import annotations

import asyncio

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.data.sql import Connection
from carpool.web.endpoints import endpoint_of
from carpool.web.responses import json_response, problem_response
from tests.helpers import probe

blueprint = Blueprint("probe", url_prefix="/_probe")


async def _insert(conn: Connection, name: str) -> None:
    await conn.execute(
        "INSERT INTO grommets (name, material, diameter_mm) VALUES ($1, 'probe', 1.0)", [name]
    )


async def _failing_commit(conn: Connection) -> None:
    # A deferred unique constraint is only checked at COMMIT: the commit itself fails.
    await conn.execute(
        "CREATE TEMP TABLE probe_deferred (v int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
        " ON COMMIT DROP"
    )
    await conn.execute("INSERT INTO probe_deferred VALUES (1), (1)")


@probe(blueprint, "/commit-fails", method="POST")
async def commit_fails(request: Request) -> HTTPResponse:
    await request.ctx.uow.run(_insert, request.args.get("name", "doomed"))
    await request.ctx.uow.run(_failing_commit)
    return json_response({"written": True}, status=201)


@probe(blueprint, "/write", method="GET")
async def write_in_get(request: Request) -> HTTPResponse:
    await request.ctx.uow.run(_insert, "written-by-get")
    return json_response({"written": True})


@probe(blueprint, "/raise", method="POST")
async def raise_after_write(request: Request) -> HTTPResponse:
    await request.ctx.uow.run(_insert, "written-then-raised")
    raise RuntimeError("boom: a secret stack detail")


@probe(blueprint, "/status/<status:int>", method="POST")
async def status_after_write(request: Request, status: int) -> HTTPResponse:
    await request.ctx.uow.run(_insert, f"written-then-{status}")
    return problem_response(status, "the handler chose this status")


@probe(blueprint, "/write", method="POST")
async def write(request: Request) -> HTTPResponse:
    await request.ctx.uow.run(_insert, request.args.get("name", "written"))
    return json_response({"written": True}, status=201)


async def _sleep(conn: Connection, seconds: float) -> float:
    await conn.execute("SELECT pg_sleep($1)", [seconds])
    return seconds


@probe(blueprint, "/sleep", method="GET")
async def sleep(request: Request) -> HTTPResponse:
    seconds = float(request.args.get("s", "0.2"))
    await request.ctx.uow.run(_sleep, seconds)
    return json_response({"slept": seconds})


@probe(blueprint, "/nap", method="GET")
async def nap(request: Request) -> HTTPResponse:
    """Sleeps in Python, not in the database (no connection held)."""
    await asyncio.sleep(float(request.args.get("s", "0.2")))
    return json_response({"napped": True})


async def _xact(conn: Connection) -> int:
    return int(await conn.value("SELECT pg_current_xact_id()::text::bigint"))


@probe(blueprint, "/xact", method="POST")
async def xact(request: Request) -> HTTPResponse:
    xid = await request.ctx.uow.run(_xact)
    await asyncio.sleep(0.05)
    return json_response({"xact": xid, "uow": id(request.ctx.uow)})


@probe(blueprint, "/echo", method="GET")
async def echo(request: Request) -> HTTPResponse:
    """The request's headers and query as the handler sees them."""
    headers = {str(name): value for name, value in request.headers.items() if name.startswith("x-")}
    return json_response({"headers": headers, "args": dict(request.args)})


@probe(blueprint, "/nested-batch", method="POST")
async def call_the_batch_handler_by_hand(request: Request) -> HTTPResponse:
    """What a failed guard would allow: `POST /batch` run inside an item, on its unit."""
    route = request.app.router.get("/batch", "POST", None)[0]
    batch = endpoint_of(route)
    assert batch is not None
    answer: HTTPResponse = await batch.handler(request)
    return answer


async def _server_role(conn: Connection) -> dict[str, object]:
    rows = await conn.rows(
        "SELECT pg_is_in_recovery() AS in_recovery,"
        " current_setting('transaction_read_only') = 'on' AS read_only"
    )
    return rows[0]


@probe(blueprint, "/role", method="GET")
async def role_of_read(request: Request) -> HTTPResponse:
    """Which server a read-only call runs on (a replica is in recovery); may it write?"""
    return json_response(await request.ctx.uow.run(_server_role))


@probe(blueprint, "/role", method="POST")
async def role_of_write(request: Request) -> HTTPResponse:
    """Which server a call that may write runs on."""
    return json_response(await request.ctx.uow.run(_server_role))


@probe(blueprint, "/guarded/<grommet_id:int>")
async def guarded_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    """A grommet, or 401 once its material is "revoked": stands in for a caller whose token
    expired (live answers end a subscription on 401)."""
    from carpool.catalog.grommets import grommets

    found = await grommets.one(request.ctx.uow, grommet_id)
    if found is not None and found["material"] == "revoked":
        return problem_response(401, "the token has expired")
    return json_response(found)


@probe(blueprint, "/look-then-nap/<grommet_id:int>", method="GET")
async def look_then_nap(request: Request, grommet_id: int) -> HTTPResponse:
    """Looks a grommet up through its loader, naps in Python, looks it up again."""
    from carpool.catalog.grommets import grommets

    first = await grommets.loader(request.ctx.uow).load(grommet_id)
    await asyncio.sleep(float(request.args.get("s", "0.3")))
    again = await grommets.loader(request.ctx.uow).load(grommet_id)
    names = [row["name"] if row else None for row in (first, again)]
    return json_response({"names": names})
