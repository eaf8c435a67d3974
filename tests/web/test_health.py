"""`/health` (liveness, no database) and `/ready` (database reachable, schema at head)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data import migrations
from tests.conftest import make_container
from tests.helpers import AUTH, assert_problem, create_app, served


@asynccontextmanager
async def app_on(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own on `database_url`, started and stopped around the block."""
    app: Any = create_app(make_container(database_url))
    async with served(app, headers=AUTH) as http:
        yield http


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_health_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "server-timing" not in response.headers  # no unit of work: nothing to report


async def test_ready_answers_200_with_the_schema_revision(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "revision": migrations.head_revision(database_url),
    }


async def test_ready_is_a_503_problem_when_the_database_is_unreachable(database_url: str) -> None:
    down = make_url(database_url).set(host="127.0.0.1", port=closed_port())
    async with app_on(down.render_as_string(hide_password=False)) as http:
        ready = await http.get("/ready")
        health = await http.get("/health")
    body = assert_problem(ready, 503, "database-unavailable")
    assert body["detail"] == "The database is unreachable."
    assert ready.headers["retry-after"] == "2"
    assert health.status_code == 200, "liveness does not depend on the database"


async def test_ready_is_a_503_problem_when_migrations_are_not_applied(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("DROP DATABASE IF EXISTS carpool_unmigrated"))
        await conn.execute(text("CREATE DATABASE carpool_unmigrated"))
    try:
        bare = make_url(database_url).set(database="carpool_unmigrated")
        async with app_on(bare.render_as_string(hide_password=False)) as http:
            response = await http.get("/ready")
        body = assert_problem(response, 503, "unavailable")
        assert "revision none" in body["detail"]
    finally:
        async with admin_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("DROP DATABASE carpool_unmigrated"))


async def test_probes_are_refused_as_batch_items(client: httpx.AsyncClient) -> None:
    response = await client.post("/batch", json={"load": ["/health", "/ready", "//ready/"]})
    assert response.status_code == 200
    assert [item["status"] for item in response.json()["responses"]] == [400, 400, 400]


async def test_ready_is_degraded_not_503_when_only_the_replica_is_down(database_url: str) -> None:
    down = make_url(database_url).set(host="127.0.0.1", port=closed_port())
    replica = down.render_as_string(hide_password=False)
    app: Any = create_app(make_container(database_url, database_read_url=replica))
    async with served(app, headers=AUTH) as http:
        ready = await http.get("/ready")
        written = await http.post(
            "/grommets", json={"name": "r", "material": "brass", "diameter_mm": 1}
        )
        read = await http.get("/grommets")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "degraded",
        "revision": migrations.head_revision(database_url),
        "unavailable": ["replica"],
    }
    assert written.status_code == 201, "writes go to the primary"
    assert_problem(read, 503, "database-unavailable")  # reads were the replica's
