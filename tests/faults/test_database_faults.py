"""The database down or every connection busy: a 503 with Retry-After, one log line, no trace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from tests.conftest import count, make_container, wait_for_idle_pool
from tests.helpers import AUTH, assert_problem, create_app, served
from tests.web.test_health import closed_port
from tests.websocket_support import AsgiSocket

GROMMET = {"name": "M6", "material": "brass", "diameter_mm": 6}


@asynccontextmanager
async def app_with(
    database_url: str, **settings: Any
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app of its own (with the probe routes) and its client."""
    from tests import probe_routes

    app: Any = create_app(make_container(database_url, **settings))
    app.blueprint(probe_routes.blueprint)
    async with served(app, headers=AUTH) as http:
        yield app, http
        engine: Database = app.ctx.container.database()
        assert await wait_for_idle_pool(engine) == 0, "a connection was leaked"


@pytest.fixture
async def down(database_url: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    url = make_url(database_url).set(host="127.0.0.1", port=closed_port())
    async with app_with(url.render_as_string(hide_password=False)) as pair:
        yield pair


@pytest.fixture
async def tight(database_url: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """One connection, and callers give up waiting for it after 0.3 s."""
    async with app_with(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.3
    ) as pair:
        yield pair


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    traced = [record for record in caplog.records if record.exc_info]
    assert not traced, [record.getMessage() for record in traced]


async def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(
    down: tuple[Any, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, http = down
    for response in (await http.get("/grommets/1"), await http.post("/grommets", json=GROMMET)):
        body = assert_problem(response, 503, "database-unavailable")
        assert int(response.headers["retry-after"]) >= 1
        assert "Retry-After" in body["detail"]
    assert_no_traceback(caplog)


async def test_batch_items_and_frames_answer_the_same_503(
    down: tuple[Any, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    app, http = down
    batch = await http.post("/batch", json={"load": ["/grommets/1", "/widgets"]})
    assert batch.status_code == 200, batch.text
    single = await http.get("/grommets/1")
    for item in batch.json()["responses"]:
        assert item["status"] == 503
        assert item["body"] == single.json()
    socket = await AsgiSocket(app).open()
    try:
        socket.send({"id": "f", "path": "/grommets/1"})
        answer = await socket.answer()
        assert answer["status"] == 503
        assert answer["body"]["type"] == "urn:carpool:problem:database-unavailable"
    finally:
        socket.leave()
        await socket.ended()
    assert_no_traceback(caplog)


async def test_no_free_connection_in_time_is_a_503_busy_and_ready_stays_200(
    tight: tuple[Any, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, http = tight
    holder = asyncio.create_task(http.get("/_probe/sleep", params={"s": "1.5"}))
    await asyncio.sleep(0.3)
    try:
        busy = await http.get("/grommets/1")
        body = assert_problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        assert "busy" in body["detail"]
        ready = await http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "busy"
        assert ready.json()["pool"]["size"] == 1
        assert ready.json()["pool"]["in_use"] == 1
    finally:
        assert (await holder).status_code == 200
    assert (await http.get("/ready")).json()["status"] == "ready"
    assert_no_traceback(caplog)


async def test_twenty_calls_on_one_connection_are_answered_200_or_503_never_500(
    tight: tuple[Any, httpx.AsyncClient],
) -> None:
    _, http = tight
    answers = await asyncio.gather(
        *(http.get("/_probe/sleep", params={"s": "0.2"}) for _ in range(20))
    )
    statuses = sorted({answer.status_code for answer in answers})
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses and 200 in statuses


async def test_a_busy_write_batch_writes_nothing(
    tight: tuple[Any, httpx.AsyncClient], admin_engine: AsyncEngine
) -> None:
    _, http = tight
    holder = asyncio.create_task(http.get("/_probe/sleep", params={"s": "1.0"}))
    await asyncio.sleep(0.3)
    batch = await http.post(
        "/batch", json={"requests": [{"method": "POST", "path": "/grommets", "body": GROMMET}]}
    )
    await holder
    assert batch.status_code == 200, batch.text
    assert batch.json()["committed"] is False
    assert batch.json()["responses"][0]["status"] == 503
    assert await count(admin_engine, "grommets") == 0


async def test_one_log_line_per_fault(
    down: tuple[Any, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, http = down
    with caplog.at_level(logging.WARNING):
        await http.get("/grommets/1")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "DatabaseUnavailable" in warnings[0].getMessage()
