"""Sessions as units of work leave them: read-only without BEGIN, clean on release, no reset.

asyncpg's pool would send a reset query on every release; ours sends nothing, because every
unit of work ends what it opened. These tests hold it to that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database, hands_out_at_once
from carpool.data.sql import Connection
from carpool.data.unit_of_work import UnitOfWork
from carpool.errors import CommitFailed, DatabaseUnavailable
from tests.conftest import own_database


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A database of the test's own with ONE connection, so every unit reuses it."""
    async with own_database(database_url, max_size=1) as db:
        yield db


class Seen:
    """The asyncpg connection a unit ran on, and the round trips it had made by then."""

    raw: Any = None

    async def __call__(self, conn: Connection) -> None:
        self.raw = conn.raw._con  # the pooled connection behind asyncpg's proxy

    @property
    def round_trips(self) -> int:
        return int(self.raw._protocol.queries_count)


async def _session_state(conn: Connection) -> dict[str, Any]:
    rows = await conn.rows(
        "SELECT current_setting('transaction_read_only') AS read_only,"
        " now() AS began,"
        " (SELECT count(*) FROM pg_prepared_xacts) AS prepared,"
        " (SELECT count(*) FROM pg_cursors WHERE is_holdable) AS cursors,"
        " (SELECT count(*) FROM pg_listening_channels()) AS listening,"
        " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        "  AND pid = pg_backend_pid()) AS advisory_locks"
    )
    return rows[0]


async def test_a_read_only_unit_runs_each_statement_on_its_own_without_begin(
    database: Database,
) -> None:
    uow = UnitOfWork(database, read_only=True)
    seen = Seen()
    await uow.run(seen)
    before = seen.round_trips
    first, second = await uow.run(_session_state), await uow.run(_session_state)
    await uow.finish(commit=False)
    # READ ONLY all the same, and each statement is its own (implicit) transaction.
    assert first["read_only"] == "on" and first["began"] < second["began"]
    assert not seen.raw.is_in_transaction()
    # One round trip per statement; none to begin, end or reset.
    assert seen.round_trips == before + 2


async def test_a_read_write_unit_sends_begin_its_statements_and_commit_and_no_reset(
    database: Database, admin_engine: AsyncEngine
) -> None:
    uow = UnitOfWork(database, read_only=False)
    seen = Seen()
    await uow.run(seen)
    assert seen.raw.is_in_transaction()
    first, second = await uow.run(_session_state), await uow.run(_session_state)
    assert first["read_only"] == "off" and first["began"] == second["began"]
    before = seen.round_trips
    await uow.finish(commit=True)
    assert seen.round_trips == before + 1  # COMMIT, and nothing on release
    assert not seen.raw.is_in_transaction()


async def _write(conn: Connection) -> None:
    await conn.execute("INSERT INTO grommets (name, material, diameter_mm) VALUES ('s', 'm', 1)")


async def _fail(conn: Connection) -> None:
    await conn.execute("SELECT 1/0")


async def _deferred_violation(conn: Connection) -> None:
    await conn.execute(
        "CREATE TEMP TABLE d (v int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"
    )
    await conn.execute("INSERT INTO d VALUES (1), (1)")


ENDINGS: dict[str, Any] = {
    "read, finished": lambda db: _run(db, True, [_session_state], commit=False),
    "read that failed": lambda db: _run(db, True, [_fail], commit=False),
    "read with a savepoint": lambda db: _savepoint(db, read_only=True),
    "write committed": lambda db: _run(db, False, [_write], commit=True),
    "write rolled back": lambda db: _run(db, False, [_write], commit=False),
    "write that failed": lambda db: _run(db, False, [_write, _fail], commit=True),
    "refused commit": lambda db: _run(db, False, [_deferred_violation], commit=True),
    "write with a savepoint": lambda db: _savepoint(db, read_only=False),
}


async def _run(db: Database, read_only: bool, steps: list[Any], *, commit: bool) -> None:
    uow = UnitOfWork(db, read_only=read_only)
    try:
        for step in steps:
            await uow.run(step)
    except asyncpg.PostgresError:
        pass
    try:
        await uow.finish(commit=commit)
    except CommitFailed:
        pass


async def _savepoint(db: Database, *, read_only: bool) -> None:
    uow = UnitOfWork(db, read_only=read_only)
    async with uow.savepoint() as point:
        await uow.run(_session_state)
        await point.undo()
    await uow.finish(commit=False)


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_every_ending_leaves_the_connection_as_a_new_one(
    database: Database, admin_engine: AsyncEngine, ending: str
) -> None:
    await ENDINGS[ending](database)
    # The pool holds one connection: the next unit gets the very same session.
    uow = UnitOfWork(database, read_only=True)
    seen = Seen()
    await uow.run(seen)
    assert not seen.raw.is_in_transaction()
    state = await uow.run(_session_state)
    await uow.finish(commit=False)
    del state["began"]
    assert state == {
        "read_only": "on",
        "prepared": 0,
        "cursors": 0,
        "listening": 0,
        "advisory_locks": 0,
    }
    async with admin_engine.connect() as conn:
        states = (
            (
                await conn.execute(
                    text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": seen.raw.get_server_pid()},
                )
            )
            .scalars()
            .all()
        )
    assert states == ["idle"]


async def test_the_app_pool_is_idle_and_outside_any_transaction_after_requests(
    client: httpx.AsyncClient, engine: Database, admin_engine: AsyncEngine
) -> None:
    await client.post("/grommets", json={"name": "M6", "material": "brass", "diameter_mm": 6})
    await client.get("/grommets/1")
    await client.post("/_probe/raise")
    await client.post("/_probe/commit-fails")
    await client.get("/_probe/write")
    assert engine.checked_out() == 0
    async with admin_engine.connect() as conn:
        states = (
            (
                await conn.execute(
                    text(
                        "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                        " AND state <> 'idle'"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert states == []


async def test_a_session_the_server_ended_is_a_503_and_never_goes_back_to_the_pool(
    database: Database, admin_engine: AsyncEngine
) -> None:
    uow = UnitOfWork(database, read_only=True)
    seen = Seen()
    await uow.run(seen)
    pid = seen.raw.get_server_pid()
    async with admin_engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DatabaseUnavailable):
        await uow.run(_session_state)
    await uow.finish(commit=False)
    # The pool holds one connection: the next unit gets a new session, clean and working.
    following = UnitOfWork(database, read_only=True)
    fresh = Seen()
    await following.run(fresh)
    assert fresh.raw.get_server_pid() != pid
    assert (await following.run(_session_state))["read_only"] == "on"
    await following.finish(commit=False)


async def test_a_checkout_arms_no_timer_exactly_when_an_open_connection_is_next_in_line(
    database_url: str,
) -> None:
    # `hands_out_at_once` peeks at asyncpg's pool: held here to what acquiring then does.
    async with own_database(database_url, max_size=2) as db:
        pool = db.pool_for(read_only=True)
        assert not hands_out_at_once(pool)  # nothing connected yet: acquiring connects
        first = await db.acquire(pool)
        first_pid = first.get_server_pid()
        await pool.release(first)
        assert hands_out_at_once(pool)
        again = await db.acquire(pool)
        assert again.get_server_pid() == first_pid  # handed out as it was, no new session
        second = await db.acquire(pool)
        assert not hands_out_at_once(pool)  # both out: acquiring would wait
        await pool.release(second)
        assert hands_out_at_once(pool)
        again.terminate()  # closed under the pool: its holder goes back without a session
        await pool.release(again)
        assert not hands_out_at_once(pool)  # next in line must connect first
        reconnected = await db.acquire(pool)
        assert reconnected.get_server_pid() != first_pid
        await pool.release(reconnected)
        assert hands_out_at_once(pool)
        await pool.expire_connections()  # open, but of an older generation: reconnects first
        assert not hands_out_at_once(pool)
