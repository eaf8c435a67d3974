"""The unit of work at its edges: cancelled finishes, and statements that lose a race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from carpool.data.sql import Connection
from carpool.data.unit_of_work import UnitOfWork
from carpool.errors import Conflict
from tests.conftest import count, own_database


@pytest.fixture
async def small_engine(database_url: str) -> AsyncIterator[Database]:
    """A database of the test's own; nothing may be checked out at the end."""
    async with own_database(database_url, max_size=2) as database:
        yield database


async def _sleep(conn: Connection, seconds: float) -> None:
    await conn.execute("SELECT pg_sleep($1)", [seconds])


async def test_a_finish_cancelled_while_another_task_queries_leaves_the_release_to_a_later_one(
    small_engine: Database,
) -> None:
    uow = UnitOfWork(small_engine, read_only=True)
    busy = asyncio.create_task(uow.run(_sleep, 0.3))
    await asyncio.sleep(0.05)
    finishing = asyncio.create_task(uow.finish(commit=False))
    await asyncio.sleep(0.05)
    finishing.cancel()  # still waiting for the busy query to let go of the connection
    with pytest.raises(asyncio.CancelledError):
        await finishing
    await busy
    assert not uow.finished and uow.has_connection
    await uow.finish(commit=False)  # the last-resort rollback every request ends with
    assert uow.finished and not uow.has_connection
    assert small_engine.checked_out() == 0


async def _repeatable_read(conn: Connection) -> str:
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    return str(await conn.value("SELECT name FROM grommets WHERE id = 1"))


async def _rename(conn: Connection, name: str) -> None:
    await conn.execute("UPDATE grommets SET name = $1 WHERE id = 1", [name])


async def test_a_statement_that_loses_a_race_is_a_conflict_and_the_unit_still_finishes(
    small_engine: Database, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO grommets (name, material, diameter_mm) VALUES ('M6', 'brass', 6)")
        )
    uow = UnitOfWork(small_engine, read_only=False)
    assert await uow.run(_repeatable_read) == "M6"  # the unit's snapshot is taken
    async with admin_engine.begin() as conn:
        await conn.execute(text("UPDATE grommets SET name = 'theirs' WHERE id = 1"))
    # PostgreSQL refuses to update a row changed since the snapshot (SQLSTATE 40001):
    # the client should retry; nothing is wrong with the server.
    with pytest.raises(Conflict, match=r"lost a race.*Retry"):
        await uow.run(_rename, "ours")
    await uow.finish(commit=False)
    assert await count(admin_engine, "grommets", "name = 'theirs'") == 1
