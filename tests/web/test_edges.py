"""Odd endings of a request: every answer is still problem+json, and no connection leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sanic import Blueprint
from sanic.exceptions import SanicException
from sanic.request import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from tests.conftest import count, make_container, wait_for_idle_pool
from tests.helpers import AUTH, assert_problem, create_app, probe, served
from tests.probe_routes import _insert

GENERIC_500 = {
    "type": "about:blank",
    "title": "Internal Server Error",
    "status": 500,
    "detail": "An unexpected error occurred; it has been logged.",
}

odd = Blueprint("odd", url_prefix="/_odd")


@probe(odd, "/returns/<kind:str>", method="POST")
async def returns_a_non_response(request: Request, kind: str) -> Any:
    await request.ctx.uow.run(_insert, f"written-then-{kind}")
    return {"dict": {"written": True}, "str": "written"}[kind]


class _UnlistedStatus(SanicException):
    status_code = 599
    message = "a secret internal message"


@probe(odd, "/unlisted-status", method="POST")
async def unlisted_status(request: Request) -> Any:
    await request.ctx.uow.run(_insert, "written-then-599")
    raise _UnlistedStatus()


@pytest.fixture(scope="module")
async def odd_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """An app with handlers that misbehave, and its engine."""
    container = make_container(database_url)
    application = create_app(container)
    application.blueprint(odd)
    async with served(application, base_url="http://odd.test", headers=AUTH) as http:
        engine: Database = container.database()
        yield http, engine


@pytest.mark.parametrize("kind", ["dict", "str"])
async def test_a_handler_returning_a_non_response_is_a_500_problem_that_keeps_nothing(
    odd_client: tuple[httpx.AsyncClient, Database], admin_engine: AsyncEngine, kind: str
) -> None:
    http, engine = odd_client
    response = await http.post(f"/_odd/returns/{kind}", headers={"x-request-id": "odd-1"})
    assert_problem(response, 500)
    assert response.json() == GENERIC_500
    # Every answer carries these, this one too.
    assert response.headers["x-request-id"] == "odd-1"
    assert response.headers["server-timing"].endswith('desc="1 queries"')
    assert await count(admin_engine, "grommets") == 0
    assert await wait_for_idle_pool(engine) == 0


async def test_an_error_the_error_handler_cannot_render_is_still_a_500_problem(
    odd_client: tuple[httpx.AsyncClient, Database], admin_engine: AsyncEngine
) -> None:
    http, engine = odd_client
    response = await http.post("/_odd/unlisted-status")
    assert_problem(response, 500)
    assert response.json() == GENERIC_500
    assert "secret" not in response.text and "_UnlistedStatus" not in response.text
    assert await count(admin_engine, "grommets") == 0
    assert await wait_for_idle_pool(engine) == 0


async def test_a_request_cancelled_twice_while_its_lookup_waits_still_releases_its_connection(
    client: httpx.AsyncClient, engine: Database, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.connect() as blocker:
        # The lookup's SELECT waits for this lock; the loader shields the fetch, so
        # cancelling the request leaves it running with the unit's connection.
        await blocker.execute(text("LOCK TABLE widgets IN ACCESS EXCLUSIVE MODE"))
        request = asyncio.create_task(client.get("/widgets/1"))
        await asyncio.sleep(0.2)
        assert engine.checked_out() == 1
        request.cancel()  # the client gives up: the last-resort rollback waits for the fetch
        await asyncio.sleep(0.05)
        request.cancel()  # and the server shuts down, cancelling that wait too
        await asyncio.wait([request], timeout=2.0)
        assert request.cancelled()
        await blocker.rollback()
    assert await wait_for_idle_pool(engine, timeout=2.0) == 0
    assert (await client.get("/widgets/1")).status_code == 404  # the pool still serves
