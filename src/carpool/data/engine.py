"""The async engine, and the hooks that charge every SQL statement to its unit of work."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

STATS_KEY = "carpool.stats"
_STARTED_KEY = "carpool.started"
_BOOKKEEPING = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@dataclass(slots=True)
class QueryStats:
    """Queries sent and seconds spent in the database by one unit of work."""

    queries: int = 0
    seconds: float = 0.0

    def server_timing(self) -> str:
        """The value of a `Server-Timing` header describing these stats."""
        return f'db;dur={self.seconds * 1000:.2f};desc="{self.queries} queries"'


def _before(
    conn: Connection, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
) -> None:
    if STATS_KEY in conn.info:
        conn.info[_STARTED_KEY] = time.perf_counter()


def _charge(conn: Connection, statement: str) -> None:
    stats: QueryStats | None = conn.info.get(STATS_KEY)
    started = conn.info.pop(_STARTED_KEY, None)
    if stats is None or started is None:
        return
    stats.seconds += time.perf_counter() - started
    if not statement.lstrip().upper().startswith(_BOOKKEEPING):
        stats.queries += 1


def _after(
    conn: Connection, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
) -> None:
    _charge(conn, statement)


def _failed(ctx: Any) -> None:
    conn = ctx.connection
    if conn is not None and ctx.statement is not None:
        _charge(conn, ctx.statement)


def _checkin(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    record.info.pop(STATS_KEY, None)
    record.info.pop(_STARTED_KEY, None)


def instrument(engine: AsyncEngine) -> None:
    """Count statements and time per unit of work (the one whose stats sit on the connection)."""
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _before)
    event.listen(sync_engine, "after_cursor_execute", _after)
    event.listen(sync_engine, "handle_error", _failed)
    event.listen(sync_engine.pool, "checkin", _checkin)


def make_engine(
    url: str, *, pool_size: int, max_overflow: int, pool_timeout_s: float
) -> AsyncEngine:
    """An instrumented asyncpg engine; no connection is opened until one is needed."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
    )
    instrument(engine)
    return engine


async def engine_resource(
    url: str, *, pool_size: int, max_overflow: int, pool_timeout_s: float
) -> AsyncIterator[AsyncEngine]:
    """Container resource: the engine for the worker's life, disposed at shutdown."""
    engine = make_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout_s=pool_timeout_s
    )
    try:
        yield engine
    finally:
        await engine.dispose()
