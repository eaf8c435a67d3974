"""The unit of work: one connection and one transaction for everything one call does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar, cast

import asyncpg

from carpool.data.engine import Database
from carpool.data.sql import Connection, QueryStats
from carpool.errors import CommitFailed, Conflict

P = ParamSpec("P")
T = TypeVar("T")


class Forgetful(Protocol):
    """A per-unit loader: anything that can drop what it has loaded."""

    def forget_all(self) -> None: ...


L = TypeVar("L", bound=Forgetful)

# SQLSTATE classes that mean "your transaction lost a race or broke a rule": a 409, not a 500.
_CONFLICT_SQLSTATE_PREFIXES = ("23", "40")
# Class 40 (transaction rollback: deadlock, serialization failure) raised by a statement.
_LOST_RACE_SQLSTATE_PREFIX = "40"


class UnitOfWorkClosed(RuntimeError):
    """Raised when a finished unit of work is asked to touch the database again."""


class UnitOfWork:
    """One call's database work: lazy, one connection, serialised between tasks.

    No connection is checked out until the first `run`. A read-write unit runs everything in
    one transaction; a read-only unit runs each statement on its own on a read-only session
    (to the replica when there is one), and opens a read-only transaction only if a
    savepoint is asked for. Every statement goes through `run`, which holds a lock, so
    handlers running concurrently on the same unit of work (batch items) take turns on its
    one connection. `finish` commits or rolls back what is open and returns the connection;
    it is idempotent and always releases.

    It also owns the loaders of its work (`loader`), so that lookups of concurrent handlers
    coalesce; `coalesce` tells the loaders whether to (off only to measure the difference).
    """

    def __init__(self, database: Database, *, read_only: bool, coalesce: bool = True) -> None:
        self.read_only = read_only
        self.coalesce = coalesce
        self.stats = QueryStats()
        self._database = database
        self._pool: asyncpg.Pool | None = None
        self._conn: Connection | None = None
        self._in_transaction = False
        self._savepoints = 0
        self._lock = asyncio.Lock()
        self._finished = False  # no new work once finishing has begun
        self._released = False  # finish has completed: the connection (if any) is back
        self._roll_back_only = False
        self._loaders: dict[str, Forgetful] = {}
        self.work = Work(self)

    @property
    def roll_back_only(self) -> bool:
        """Whether a borrower asked that nothing be committed (see `Work.roll_back_at_end`)."""
        return self._roll_back_only

    @property
    def finished(self) -> bool:
        """Whether `finish` has completed: nothing is, or will again be, checked out."""
        return self._released

    @property
    def has_connection(self) -> bool:
        """Whether a connection is checked out right now."""
        return self._conn is not None

    @property
    def finishes_at_once(self) -> bool:
        """Whether `finish` has nothing to wait for but the pool's own (shielded) release.

        True when no statement is running and no transaction is open: then no cancellation
        can leave the connection out, and the caller needs no shield of its own.
        """
        return not self._lock.locked() and not self._in_transaction

    async def run(
        self,
        query: Callable[Concatenate[Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `query(connection, *args, **kwargs)` as part of this unit.

        A read-write unit runs it inside its transaction (begun READ WRITE before its first
        statement); a read-only unit runs each statement on its own, on a session that is
        read-only by default (no BEGIN, no ROLLBACK: under READ COMMITTED each statement takes
        its own snapshot either way, and none can write).

        A statement that loses a race with another transaction (deadlock, serialization
        failure) raises Conflict: the client may retry, it is not a server fault.
        """
        async with self._lock:
            conn = await self._connection()
            try:
                return await query(conn, *args, **kwargs)
            except asyncpg.PostgresError as exc:
                if _sqlstate(exc).startswith(_LOST_RACE_SQLSTATE_PREFIX):
                    raise Conflict(
                        "This request lost a race with another transaction (deadlock or"
                        " serialization failure); nothing it wrote was kept. Retry it."
                    ) from exc
                raise

    def loader(self, name: str, make: Callable[[UnitOfWork], L]) -> L:
        """This unit's loader called `name`, made by `make(self)` the first time it is asked for.

        Loaders live as long as the unit of work; one that is never asked for is never made.
        """
        found = self._loaders.get(name)
        if found is None:
            found = self._loaders[name] = make(self)
        return cast(L, found)

    def forget_loaded(self) -> None:
        """Drop what every loader has loaded: the next loads read the database again."""
        for loader in self._loaders.values():
            loader.forget_all()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[Savepoint]:
        """A SAVEPOINT around a block; the block decides with `keep()` or `undo()`.

        If the block calls neither, an exception rolls the savepoint back and a normal
        exit releases it.
        """
        async with self._lock:
            conn = await self._connection()
            if not self._in_transaction:
                # A read-only unit runs without a transaction until it needs a savepoint.
                await conn.raw.execute("BEGIN")
                self._in_transaction = True
            self._savepoints += 1
            name = f"carpool_{self._savepoints}"
            await conn.raw.execute(f"SAVEPOINT {name}")
        point = Savepoint(self, conn, name)
        try:
            yield point
        except BaseException:
            # The original exception is what matters; a connection broken by it may refuse.
            with contextlib.suppress(Exception):
                await point.undo()
            raise
        await point.keep()

    async def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and release the connection; once done, later calls do nothing.

        A refused COMMIT raises `CommitFailed`; the connection is released all the same.
        A call cancelled while another task still held the connection has done nothing:
        a later call (the last-resort rollback) still releases it.
        """
        if self._released:
            return
        self._finished = True
        async with self._lock:
            if self._released:
                return
            self._released = True
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                if self._in_transaction:
                    await conn.raw.execute("COMMIT" if commit else "ROLLBACK")
            except asyncpg.PostgresError as exc:
                raise _commit_failed(exc) from exc
            finally:
                self._in_transaction = False
                assert self._pool is not None
                await self._pool.release(conn.raw)

    async def _connection(self) -> Connection:
        if self._finished:
            raise UnitOfWorkClosed("this unit of work has already finished")
        if self._conn is None:
            database = self._database
            pool, raw = await database.acquire(read_only=self.read_only)
            try:
                if not self.read_only:
                    # Sessions are read-only by default; this unit's transaction may write.
                    await raw.execute("BEGIN READ WRITE")
                    self._in_transaction = True
            except BaseException:
                await pool.release(raw)
                raise
            self._pool = pool
            self._conn = Connection(raw, self.stats, database.tracer)
        return self._conn


class Work:
    """A unit of work as handlers, batch items and frames borrow it: they may run statements,
    use its loaders and savepoints, never finish it.

    Only the unit's owner (the unit-of-work scope of the outer call) can commit, roll back or
    release it, so no sub-request, however it got there, can end its outer call's transaction.
    A borrower may only make the ending stricter: ask for READ ONLY before any statement ran,
    or ask for a rollback.
    """

    __slots__ = ("_unit",)

    def __init__(self, unit: UnitOfWork) -> None:
        self._unit = unit

    @property
    def read_only(self) -> bool:
        """Whether the unit refuses writes."""
        return self._unit.read_only

    @property
    def coalesce(self) -> bool:
        """Whether the unit's loaders coalesce lookups."""
        return self._unit.coalesce

    @property
    def stats(self) -> QueryStats:
        """Queries sent and time spent so far."""
        return self._unit.stats

    @property
    def has_connection(self) -> bool:
        """Whether a statement has run yet (a connection is checked out)."""
        return self._unit.has_connection

    async def run(
        self,
        query: Callable[Concatenate[Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`UnitOfWork.run`: `query(connection, ...)` as part of the unit."""
        return await self._unit.run(query, *args, **kwargs)

    def loader(self, name: str, make: Callable[[Work], L]) -> L:
        """The unit's loader called `name`, made by `make(work)` the first time."""
        return self._unit.loader(name, lambda _: make(self))

    def forget_loaded(self) -> None:
        """Drop what every loader has loaded."""
        self._unit.forget_loaded()

    def savepoint(self) -> AbstractAsyncContextManager[Savepoint]:
        """`UnitOfWork.savepoint`: a SAVEPOINT around a block, kept or undone by the block."""
        return self._unit.savepoint()

    def restrict_to_read_only(self) -> None:
        """Run READ ONLY after all; only before the first statement (afterwards, no effect)."""
        if not self._unit.has_connection:
            self._unit.read_only = True

    def roll_back_at_end(self) -> None:
        """Whatever the answer, the owner rolls back instead of committing."""
        self._unit._roll_back_only = True


class Savepoint:
    """A SAVEPOINT inside a unit of work, kept or undone exactly once."""

    def __init__(self, uow: UnitOfWork, conn: Connection, name: str) -> None:
        self._uow = uow
        self._raw = conn.raw
        self._name = name
        self._done = False
        self.undone = False

    async def keep(self) -> None:
        """Release the savepoint: its writes join the transaction."""
        if not self._done:
            self._done = True
            async with self._uow._lock:
                await self._raw.execute(f"RELEASE SAVEPOINT {self._name}")

    async def undo(self) -> None:
        """Roll back to the savepoint: its writes are gone, the transaction goes on."""
        if not self._done:
            self._done = True
            self.undone = True
            async with self._uow._lock:
                try:
                    await self._raw.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
                finally:
                    # What was loaded since the savepoint may show writes that are now gone.
                    self._uow.forget_loaded()


def _sqlstate(exc: asyncpg.PostgresError) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def _commit_failed(exc: asyncpg.PostgresError) -> CommitFailed:
    conflict = _sqlstate(exc).startswith(_CONFLICT_SQLSTATE_PREFIXES)
    detail = (
        "The transaction could not be committed because it conflicts with the database state;"
        " nothing was saved."
        if conflict
        else "The transaction could not be committed; nothing was saved."
    )
    return CommitFailed(detail, conflict=conflict)
