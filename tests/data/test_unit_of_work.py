"""The unit of work: lazy, one transaction, finalised on every ending, and its query stats."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from carpool.data.sql import Connection
from carpool.data.unit_of_work import UnitOfWork, UnitOfWorkClosed
from carpool.errors import CommitFailed
from tests.conftest import count, own_database, wait_for_idle_pool

GENERIC_500 = {
    "type": "about:blank",
    "title": "Internal Server Error",
    "status": 500,
    "detail": "An unexpected error occurred; it has been logged.",
}
SERVER_TIMING = re.compile(r'^db;dur=(\d+\.\d{2});desc="(\d+) queries"$')


def queries_of(response: httpx.Response) -> int:
    """The query count a response's Server-Timing header reports."""
    match = SERVER_TIMING.match(response.headers["server-timing"])
    assert match, response.headers["server-timing"]
    return int(match.group(2))


@pytest.fixture
def checkouts(engine: Database) -> Iterator[list[object]]:
    """One entry per pool checkout of the app's database while the test runs."""
    before = engine.checkouts
    seen: list[object] = []
    yield seen
    seen.extend(range(engine.checkouts - before))


async def lingering_sessions(admin_engine: AsyncEngine) -> list[tuple[str, str]]:
    """Other sessions of the test database that are in a transaction or still running a query."""
    async with admin_engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT state, query FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND (state LIKE 'idle in transaction%' OR state = 'active')"
            )
        )
        return [(row.state, row.query) for row in result]


async def wait_for_no_lingering_sessions(
    admin_engine: AsyncEngine, timeout: float = 3.0
) -> list[tuple[str, str]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await lingering_sessions(admin_engine)) and (
        asyncio.get_running_loop().time() < deadline
    ):
        await asyncio.sleep(0.05)
    return found


# -- laziness and statistics ------------------------------------------------------------------


async def test_health_never_touches_the_pool(
    client: httpx.AsyncClient, engine: Database, checkouts: list[object]
) -> None:
    response = await client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "server-timing" not in response.headers  # no unit of work is even opened
    assert checkouts == []
    assert engine.checked_out() == 0


async def test_a_handler_that_does_not_query_holds_no_connection_while_it_runs(
    client: httpx.AsyncClient, engine: Database, checkouts: list[object]
) -> None:
    task = asyncio.create_task(client.get("/_probe/nap", params={"s": "0.3"}))
    await asyncio.sleep(0.15)
    assert not task.done()
    assert engine.checked_out() == 0
    response = await task
    assert response.status_code == 200 and queries_of(response) == 0
    assert checkouts == []


async def test_server_timing_counts_the_app_queries_but_not_begin_or_commit(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/grommets", json={"name": "M6", "material": "brass", "diameter_mm": 6}
    )
    assert created.status_code == 201 and queries_of(created) == 1
    gid = created.json()["id"]
    widget = await client.post(
        "/widgets", json={"name": "w", "parts": [{"grommet_id": gid, "quantity": 1}]}
    )
    # Lock the grommets, insert the widget, insert its parts.
    assert widget.status_code == 201 and queries_of(widget) == 3
    wid = widget.json()["id"]
    assert queries_of(await client.get(f"/widgets/{wid}")) == 2
    assert queries_of(await client.get(f"/widgets/{wid}?include=grommets")) == 3
    assert queries_of(await client.get("/widgets/999")) == 1
    assert queries_of(await client.get(f"/grommets/{gid}")) == 1
    missing = await client.get("/grommets/999")
    assert missing.status_code == 404 and queries_of(missing) == 1


async def test_server_timing_reports_time_spent_in_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/_probe/sleep", params={"s": "0.1"})
    assert response.status_code == 200
    match = SERVER_TIMING.match(response.headers["server-timing"])
    assert match and match.group(2) == "1"
    assert 100.0 <= float(match.group(1)) < 1000.0


# -- endings ----------------------------------------------------------------------------------


async def test_a_write_from_a_get_handler_is_refused_by_the_read_only_transaction(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await client.get("/_probe/write")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == GENERIC_500
    assert await count(admin_engine, "grommets") == 0


async def test_a_successful_unsafe_request_commits(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await client.post("/_probe/write", params={"name": "kept"})
    assert response.status_code == 201
    assert await count(admin_engine, "grommets", "name = 'kept'") == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500, 503])
async def test_an_error_status_rolls_back_what_the_handler_wrote(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, status: int
) -> None:
    response = await client.post(f"/_probe/status/{status}")
    assert response.status_code == status
    assert response.json()["detail"] == "the handler chose this status"
    assert await count(admin_engine, "grommets") == 0


async def test_a_status_below_400_commits_what_the_handler_wrote(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await client.post("/_probe/status/202")
    assert response.status_code == 202
    assert await count(admin_engine, "grommets", "name = 'written-then-202'") == 1


async def test_a_handler_exception_rolls_back_and_leaks_no_detail(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await client.post("/_probe/raise")
    assert response.status_code == 500
    assert response.json() == GENERIC_500
    assert "boom" not in response.text and "secret" not in response.text
    assert "Traceback" not in response.text
    assert await count(admin_engine, "grommets") == 0


async def test_a_failing_commit_answers_409_and_keeps_nothing(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await client.post("/_probe/commit-fails", params={"name": "doomed"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:carpool:problem:commit-failed"
    assert body["status"] == 409
    assert "nothing was saved" in body["detail"]
    assert "probe_deferred" not in response.text and "duplicate" not in response.text
    assert "written" not in response.text
    assert queries_of(response) == 3
    assert await count(admin_engine, "grommets") == 0


async def test_a_cancelled_request_releases_its_connection_and_leaves_no_transaction(
    client: httpx.AsyncClient, engine: Database, admin_engine: AsyncEngine
) -> None:
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(client.get("/_probe/sleep", params={"s": "5"}))
    await asyncio.sleep(0.3)
    assert not task.done()
    assert engine.checked_out() == 1
    assert [state for state, query in await lingering_sessions(admin_engine)] == ["active"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for_idle_pool(engine, timeout=2.0) == 0
    assert await wait_for_no_lingering_sessions(admin_engine) == []
    assert asyncio.get_running_loop().time() - started < 4.0
    # The pool still serves.
    assert (await client.get("/_probe/sleep", params={"s": "0"})).status_code == 200


async def test_concurrent_requests_each_get_their_own_transaction(
    client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(*(client.post("/_probe/xact") for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert len({r.json()["xact"] for r in responses}) == 50


# -- the UnitOfWork itself --------------------------------------------------------------------


@pytest.fixture
async def own_engine(database_url: str) -> AsyncIterator[Database]:
    """A database of the test's own, so its pool can be inspected in isolation."""
    async with own_database(database_url, max_size=2) as database:
        yield database


async def _insert(conn: Connection, name: str) -> None:
    await conn.execute(
        "INSERT INTO grommets (name, material, diameter_mm) VALUES ($1, 'm', 1.0)", [name]
    )


async def _names(conn: Connection) -> list[str]:
    return [row["name"] for row in await conn.rows("SELECT name FROM grommets ORDER BY name")]


async def test_unit_is_lazy_and_finishing_an_unused_one_checks_nothing_out(
    own_engine: Database,
) -> None:
    uow = UnitOfWork(own_engine, read_only=True)
    assert not uow.has_connection
    await uow.finish(commit=True)
    assert own_engine.checkouts == 0
    assert uow.stats.queries == 0


async def test_savepoints_keep_or_undo_their_block(
    own_engine: Database, admin_engine: AsyncEngine
) -> None:
    uow = UnitOfWork(own_engine, read_only=False)
    await uow.run(_insert, "a")
    async with uow.savepoint() as point:
        await uow.run(_insert, "undone")
        await point.undo()
    assert point.undone
    async with uow.savepoint() as point:
        await uow.run(_insert, "kept")
    assert not point.undone
    with pytest.raises(RuntimeError, match="inside"):
        async with uow.savepoint():
            await uow.run(_insert, "raised")
            raise RuntimeError("inside")
    async with uow.savepoint() as point:
        await uow.run(_insert, "kept-explicitly")
        await point.keep()
        await point.undo()  # too late: a savepoint is decided once
    assert await uow.run(_names) == ["a", "kept", "kept-explicitly"]
    # Only the five inserts and the select count; SAVEPOINT bookkeeping does not.
    assert uow.stats.queries == 6
    assert await count(admin_engine, "grommets") == 0  # not committed yet
    await uow.finish(commit=True)
    assert await count(admin_engine, "grommets") == 3


async def test_finish_rolls_back_when_asked_and_is_idempotent(
    own_engine: Database, admin_engine: AsyncEngine
) -> None:
    uow = UnitOfWork(own_engine, read_only=False)
    await uow.run(_insert, "rolled-back")
    assert uow.has_connection and own_engine.checked_out() == 1
    await uow.finish(commit=False)
    assert not uow.has_connection and own_engine.checked_out() == 0
    await uow.finish(commit=True)  # a second finish does nothing, and commits nothing
    await uow.finish(commit=False)
    assert await count(admin_engine, "grommets") == 0


async def test_use_after_finish_raises(own_engine: Database) -> None:
    uow = UnitOfWork(own_engine, read_only=False)
    await uow.run(_names)
    await uow.finish(commit=True)
    with pytest.raises(UnitOfWorkClosed):
        await uow.run(_names)
    with pytest.raises(UnitOfWorkClosed):
        async with uow.savepoint():
            pass
    never_used = UnitOfWork(own_engine, read_only=True)
    await never_used.finish(commit=False)
    with pytest.raises(UnitOfWorkClosed):
        await never_used.run(_names)
    assert own_engine.checked_out() == 0


async def test_a_read_only_unit_refuses_writes(own_engine: Database) -> None:
    uow = UnitOfWork(own_engine, read_only=True)
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError, match="read-only transaction"):
        await uow.run(_insert, "nope")
    await uow.finish(commit=False)


async def test_a_refused_commit_raises_commit_failed_and_releases_the_connection(
    own_engine: Database, admin_engine: AsyncEngine
) -> None:
    async def deferred_violation(conn: Connection) -> None:
        await conn.execute(
            "CREATE TEMP TABLE d (v int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"
        )
        await conn.execute("INSERT INTO d VALUES (1), (1)")

    uow = UnitOfWork(own_engine, read_only=False)
    await uow.run(_insert, "doomed")
    await uow.run(deferred_violation)
    with pytest.raises(CommitFailed) as caught:
        await uow.finish(commit=True)
    assert caught.value.conflict is True
    assert own_engine.checked_out() == 0
    assert await count(admin_engine, "grommets") == 0
    await uow.finish(commit=True)  # already finished: nothing more happens


async def test_concurrent_runs_on_one_unit_take_turns_on_its_one_connection(
    own_engine: Database,
) -> None:
    uow = UnitOfWork(own_engine, read_only=True)
    inside = 0
    most = 0
    backends: set[int] = set()

    async def probe(conn: Connection) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        backends.add(await conn.value("SELECT pg_backend_pid()"))
        await conn.execute("SELECT pg_sleep(0.01)")
        inside -= 1

    await asyncio.gather(*(uow.run(probe) for _ in range(10)))
    assert most == 1
    assert len(backends) == 1
    assert own_engine.checked_out() == 1
    assert uow.stats.queries == 20
    await uow.finish(commit=False)
