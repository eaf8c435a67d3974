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


# -- a frozen database (SIGSTOP: what a partition looks like): DB_STATEMENT_TIMEOUT_S ---------


def _freeze(postmaster_pid: int, sig: int) -> None:
    """Send `sig` to the server and every backend it forked."""
    import os

    import psutil

    server = psutil.Process(postmaster_pid)
    for process in [server, *server.children(recursive=True)]:
        os.kill(process.pid, sig)


async def test_a_frozen_database_answers_503_unavailable_within_the_deadline_and_keeps_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import signal
    import time

    from tests.faults import tally
    from tests.faults.own_postgres import own_postgres

    deadline_s = 1.0  # the client gives up 1 s after the server's own deadline
    caplog.set_level(logging.WARNING, logger="carpool.data")
    async with own_postgres() as server:
        pid = int((server.server.pgdata / "postmaster.pid").read_text().split()[0])
        settings = {"db_statement_timeout_s": deadline_s, "db_pool_timeout_s": 1.0}
        async with app_with(server.url, **settings) as (app, http):
            assert (await http.post("/grommets", json=GROMMET)).status_code == 201
            socket = await AsgiSocket(app).open()
            _freeze(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                single = await http.get("/grommets/1")
                read_s = time.monotonic() - started
                started = time.monotonic()
                socket.send({"id": "w", "method": "POST", "path": "/grommets", "body": GROMMET})
                frame = await socket.answer()
                frame_s = time.monotonic() - started
                started = time.monotonic()
                batch = await http.post("/batch", json={"load": ["/grommets", "/widgets"]})
                batch_s = time.monotonic() - started
            finally:
                _freeze(pid, signal.SIGCONT)
            socket.leave()
            await socket.ended()
            for _ in range(100):  # back once the server runs again
                if (await http.get("/grommets")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            kept = (await http.get("/grommets")).json()["items"]
    assert_problem(single, 503, "database-unavailable")
    assert frame["status"] == 503 and frame["body"]["type"].endswith("database-unavailable")
    assert [item["status"] for item in batch.json()["responses"]] == [503, 503]
    # Within the deadline (2 s each: the statement's, or the pool's for a new connection),
    # with room for a loaded machine; before, a frame waited as long as the freeze lasted.
    assert max(read_s, frame_s, batch_s) < 2 * (deadline_s + 1) + 2, (read_s, frame_s, batch_s)
    assert [g["name"] for g in kept] == ["M6"], "the frozen write was not kept"
    warnings = [r.getMessage() for r in caplog.records if r.name == "carpool.data"]
    assert len(warnings) >= 3, warnings
    assert not [r for r in caplog.records if r.exc_info]
    tally.record(
        frozen_calls=3, frozen_503=3, frozen_slowest_s=round(max(read_s, frame_s, batch_s), 2)
    )


async def test_sessions_killed_mid_statement_answer_503_with_one_warning_each(
    database_url: str, admin_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import text

    from tests.websocket_support import wait_for_sleeper

    calls = 5
    caplog.set_level(logging.WARNING, logger="carpool.data")
    async with app_with(database_url) as (_, http):
        sleepers = [asyncio.create_task(http.get("/_probe/sleep?s=10")) for _ in range(calls)]
        await wait_for_sleeper(admin_engine)
        async with asyncio.timeout(10):
            while True:  # every sleeper's session is inside pg_sleep
                async with admin_engine.connect() as conn:
                    found = await conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                            " AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
                        )
                    )
                    if found.scalar_one() >= calls:
                        break
                await asyncio.sleep(0.02)
        async with admin_engine.begin() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state ="
                    " 'active' AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
                )
            )
        answers = await asyncio.gather(*sleepers)
    for answer in answers:
        assert_problem(answer, 503, "database-unavailable")
    said = [r.getMessage() for r in caplog.records if r.name == "carpool.data"]
    assert len(said) == calls, said  # one WARNING per fault (before: none)
    assert_no_traceback(caplog)
