"""The database as the app sees it: asyncpg pools for the primary and an optional replica."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from carpool.data.sql import QueryStats, StatementTracer

__all__ = [
    "Database",
    "QueryStats",
    "SessionPolicy",
    "asyncpg_dsn",
    "open_database",
    "pools_resource",
    "sqlalchemy_engine",
]

# Every session starts read-only: a statement outside a transaction the unit of work opened
# READ WRITE cannot write. Sent in the startup packet, so it costs no round trip.
_READ_ONLY_SESSION = {"default_transaction_read_only": "on"}
# A statement the server has not answered this much after its own statement_timeout has
# fired is taken for a server that is gone (frozen, partitioned): the client gives up.
CLIENT_DEADLINE_MARGIN_S = 1.0
SessionDefaults = Literal["startup", "role"]


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How carpool's sessions get their defaults: read-only, and the statement deadline.

    `startup` (the default): sent as startup parameters (`default_transaction_read_only`,
    `statement_timeout`, `lock_timeout`), no round trip. `role`: nothing is sent (a pooler
    such as PgBouncer 1.18 refuses those parameters); the database role carries them
    (`ALTER ROLE ... SET default_transaction_read_only = on`), and each new connection
    checks that it does, once, before any unit uses it. Either way the client gives up on
    a statement `statement_timeout_s + CLIENT_DEADLINE_MARGIN_S` after it was sent.
    """

    statement_timeout_s: float | None = None
    defaults: SessionDefaults = "startup"

    @property
    def command_timeout_s(self) -> float | None:
        """asyncpg's client-side deadline per statement (None: none)."""
        if self.statement_timeout_s is None:
            return None
        return self.statement_timeout_s + CLIENT_DEADLINE_MARGIN_S

    def server_settings(self) -> dict[str, str]:
        """The startup parameters to send."""
        if self.defaults == "role":
            return {}
        settings = dict(_READ_ONLY_SESSION)
        if self.statement_timeout_s is not None:
            ms = str(max(1, round(self.statement_timeout_s * 1000)))
            settings |= {"statement_timeout": ms, "lock_timeout": ms}
        return settings


class SessionNotReadOnly(ConnectionError):
    """DB_SESSION_DEFAULTS=role, but the role's sessions are not read-only by default."""


async def _check_role_defaults(conn: asyncpg.Connection) -> None:
    """A new connection's sessions must be read-only by default (the role says so)."""
    if await conn.fetchval("SHOW default_transaction_read_only") != "on":
        raise SessionNotReadOnly(
            "DB_SESSION_DEFAULTS=role, but this role's sessions are not read-only by default:"
            " ALTER ROLE <role> SET default_transaction_read_only = on"
        )


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy `postgresql+asyncpg://` URL spelled for asyncpg (`postgresql://`)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def sqlalchemy_engine(url: str) -> AsyncEngine:
    """A SQLAlchemy engine (no pool: migrations, seeding, tests) whose connections honour
    the whole URL, its query included (`sslmode`, `sslrootcert`, `host` of a socket, ...).

    SQLAlchemy's asyncpg dialect hands the URL's query items to `asyncpg.connect()` as
    keywords, which refuses libpq's (`sslmode`); asyncpg reads them from a DSN.
    """
    dsn = asyncpg_dsn(url)
    return create_async_engine(
        "postgresql+asyncpg://", poolclass=NullPool, async_creator=lambda: asyncpg.connect(dsn)
    )


async def _keep_clean_connection(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to send.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; ...` (a round trip) on every
    release. A unit of work leaves its connection as it found it: every transaction it opened
    is committed or rolled back before release, and it never sets session state, listens or
    takes session locks. asyncpg itself still rolls back (loudly) a transaction found open.
    """


class Database:
    """The primary's pool (every unit that writes) and the read pool (read-only units).

    Without a replica the read pool is the primary's pool: every session is read-only by
    default, and a unit that writes opens its transaction READ WRITE. With
    `DATABASE_READ_URL`, read-only units go to the replica's pool instead. The object exists
    before its pools (so that making a unit of work needs no await); `open` makes them, and
    no connection is opened until a unit first needs one.
    """

    def __init__(
        self,
        *,
        acquire_timeout_s: float,
        statement_cache_size: int = 100,
        session: SessionPolicy | None = None,
    ) -> None:
        self.primary: asyncpg.Pool | None = None
        self.statement_cache_size = statement_cache_size
        self.session = session or SessionPolicy()
        self.max_size = 0
        self.replica: asyncpg.Pool | None = None
        self.acquire_timeout_s = acquire_timeout_s
        self.database_name: str | None = None
        self.tracer: StatementTracer | None = None
        self.checkouts = 0  # connections handed to units of work so far (tests watch it)

    async def open(self, url: str, *, read_url: str | None = None, max_size: int) -> None:
        """Make the pools for `url` (and the replica at `read_url`); they connect on first use."""
        self.database_name = _database_name(url)
        self.max_size = max_size
        self.primary = await self._make_pool(url)
        if read_url:
            self.replica = await self._make_pool(read_url)

    def _make_pool(self, url: str) -> asyncpg.Pool:
        cache, session = self.statement_cache_size, self.session
        return make_pool(url, max_size=self.max_size, statement_cache_size=cache, session=session)

    def pool_for(self, *, read_only: bool) -> asyncpg.Pool:
        """Where a unit of work gets its connection."""
        if read_only and self.replica is not None:
            return self.replica
        if self.primary is None:
            raise RuntimeError("the database is not open (the container's resources start it)")
        return self.primary

    async def acquire(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        """A connection from `pool` (one of `pool_for`'s), waiting at most the pool timeout.

        Past it, TimeoutError if every connection was in use (the unit of work answers 503
        busy), ConnectionError if there was room and the database did not let a new
        connection in meanwhile (503 unavailable: a frozen or unreachable server).
        """
        if hands_out_at_once(pool):
            # A connected one is next in line: acquiring does not wait, so no timer is armed.
            conn = await pool.acquire()
        else:
            try:
                async with asyncio.timeout(self.acquire_timeout_s):
                    conn = await pool.acquire()
            except TimeoutError:
                if _in_use(pool) >= self.max_size:
                    raise
                raise ConnectionError(
                    f"no connection could be opened within {self.acquire_timeout_s} s"
                ) from None
        self.checkouts += 1
        return conn

    def checked_out(self) -> int:
        """Connections out of the pools right now (0 when every unit has finished)."""
        return sum(_in_use(pool) for pool in (self.primary, self.replica) if pool is not None)

    async def close(self, *, grace_s: float = 10.0) -> None:
        """Close every pool: checked-out connections get `grace_s` to come back, then are cut."""
        pools = [pool for pool in (self.primary, self.replica) if pool is not None]
        self.primary = self.replica = None
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), grace_s)
            except TimeoutError:
                pool.terminate()


def hands_out_at_once(pool: asyncpg.Pool) -> bool:
    """Whether `pool.acquire()` would hand out a connection without waiting: the holder the
    pool's free queue gives next (last in, first out) holds an open connection of the pool's
    current generation (else it connects first, or there is none to give).

    A peek at asyncpg's pool (its version is pinned, and tests/data/test_sessions.py holds
    this to what acquiring does). `get_idle_size()`, public, walks every holder through
    four calls each: about 90 calls a checkout, a seventh of a one-row GET's.
    """
    try:
        free = pool._queue._queue
        if not free:
            return False
        holder = free[-1]
        con = holder._con
        return con is not None and not con.is_closed() and holder._generation == pool._generation
    except AttributeError:  # another asyncpg inside: ask the slow, public way
        return bool(pool.get_idle_size())


def _in_use(pool: asyncpg.Pool) -> int:
    return int(pool.get_size() - pool.get_idle_size())


def make_pool(
    url: str,
    *,
    max_size: int,
    statement_cache_size: int = 100,
    session: SessionPolicy | None = None,
) -> asyncpg.Pool:
    """An unopened pool of read-only-by-default sessions, reset-free on release."""
    session = session or SessionPolicy()
    return asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=0,
        max_size=max_size,
        statement_cache_size=statement_cache_size,
        server_settings=session.server_settings(),
        command_timeout=session.command_timeout_s,
        init=_check_role_defaults if session.defaults == "role" else None,
        reset=_keep_clean_connection,
    )


async def open_database(
    url: str,
    *,
    read_url: str | None = None,
    max_size: int,
    acquire_timeout_s: float,
    session: SessionPolicy | None = None,
) -> Database:
    """A Database with its pools made for `url` (and the replica at `read_url`)."""
    database = Database(acquire_timeout_s=acquire_timeout_s, session=session)
    await database.open(url, read_url=read_url, max_size=max_size)
    return database


async def pools_resource(
    database: Database,
    url: str,
    *,
    read_url: str | None = None,
    pool_size: int,
    max_overflow: int,
) -> AsyncIterator[Database]:
    """Container resource: `database`'s pools for the worker's life, closed at shutdown.

    A pool holds at most `pool_size + max_overflow` connections; idle ones close by themselves
    after five minutes (asyncpg's default), and none is opened before a unit needs one.
    """
    await database.open(url, read_url=read_url, max_size=pool_size + max_overflow)
    try:
        yield database
    finally:
        await database.close()


def _database_name(url: str) -> str | None:
    path = url.split("://", 1)[-1].split("?", 1)[0]
    name = path.rsplit("/", 1)[1] if "/" in path else ""
    return name or None
