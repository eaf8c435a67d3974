"""The unit of work: one connection and one transaction for everything one call does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carpool.data import faults
from carpool.data.engine import STATS_KEY, QueryStats
from carpool.errors import CommitFailed, Conflict, DatabaseUnavailable

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
    """One request's database work: lazy, one transaction, serialised between tasks.

    No connection is checked out until the first `run`. Every statement goes through
    `run`, which holds a lock, so handlers running concurrently on the same unit of work
    (batch items) take turns on its one connection. `finish` commits or rolls back and
    returns the connection; it is idempotent and always releases.

    It also owns the loaders of its work (`loader`), so that lookups of concurrent handlers
    coalesce; `coalesce` tells the loaders whether to (off only to measure the difference).
    """

    def __init__(self, engine: AsyncEngine, *, read_only: bool, coalesce: bool = True) -> None:
        self.read_only = read_only
        self.coalesce = coalesce
        self.stats = QueryStats()
        self._engine = engine
        self._conn: AsyncConnection | None = None
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

    async def run(
        self,
        query: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `query(connection, *args, **kwargs)` inside this unit's transaction.

        A statement that loses a race with another transaction (deadlock, serialization
        failure) raises Conflict: the client may retry, it is not a server fault.
        """
        async with self._lock:
            conn = await self._connection()
            try:
                return await query(conn, *args, **kwargs)
            except DBAPIError as exc:
                if _sqlstate(exc).startswith(_LOST_RACE_SQLSTATE_PREFIX):
                    raise Conflict(
                        "This request lost a race with another transaction (deadlock or"
                        " serialization failure); nothing it wrote was kept. Retry it."
                    ) from exc
                _raise_if_gone(exc)
                raise
            except OSError as exc:  # the connection went away mid-statement
                _raise_if_gone(exc)
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
            nested = await conn.begin_nested()
        point = Savepoint(self, nested)
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
                if commit:
                    await conn.commit()
                else:
                    await conn.rollback()
            except (DBAPIError, OSError) as exc:
                if not commit and faults.connection_fault(exc):
                    return  # a session that is gone has rolled back: nothing to do
                raise _commit_failed(exc) from exc
            finally:
                await conn.close()

    def pool_figures(self, *, size: int) -> faults.PoolFigures:
        """How the pool this unit takes its connection from stands (`size`: its capacity)."""
        return faults.pool_figures(self._engine, size=size)

    async def _connection(self) -> AsyncConnection:
        if self._finished:
            raise UnitOfWorkClosed("this unit of work has already finished")
        if self._conn is None:
            async with faults.checkout(self._engine):  # 503 if none in time, or unreachable
                conn = await self._engine.connect()
                try:
                    if self.read_only:
                        await conn.execution_options(postgresql_readonly=True)
                    conn.sync_connection.info[STATS_KEY] = self.stats  # type: ignore[union-attr]
                    await conn.begin()
                except BaseException:
                    await conn.close()
                    raise
            self._conn = conn
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
        """Whether the unit's transaction refuses writes."""
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
        query: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`UnitOfWork.run`: `query(connection, ...)` inside the unit's transaction."""
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

    def pool_figures(self, *, size: int) -> faults.PoolFigures:
        """`UnitOfWork.pool_figures`: how the unit's pool stands."""
        return self._unit.pool_figures(size=size)


class Savepoint:
    """A SAVEPOINT inside a unit of work, kept or undone exactly once."""

    def __init__(self, uow: UnitOfWork, nested: Any) -> None:
        self._uow = uow
        self._nested = nested
        self._done = False
        self.undone = False

    async def keep(self) -> None:
        """Release the savepoint: its writes join the transaction."""
        if not self._done:
            self._done = True
            async with self._uow._lock:
                await self._nested.commit()

    async def undo(self) -> None:
        """Roll back to the savepoint: its writes are gone, the transaction goes on."""
        if not self._done:
            self._done = True
            self.undone = True
            async with self._uow._lock:
                try:
                    await self._nested.rollback()
                finally:
                    # What was loaded since the savepoint may show writes that are now gone.
                    self._uow.forget_loaded()


def _raise_if_gone(exc: DBAPIError | OSError) -> None:
    """Raise DatabaseUnavailable (a 503) if `exc` means the connection is gone."""
    fault = faults.connection_fault(exc)
    if fault is not None:
        raise fault from exc


def _sqlstate(exc: DBAPIError | OSError) -> str:
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")


def _commit_failed(exc: DBAPIError | OSError) -> CommitFailed | DatabaseUnavailable:
    if faults.connection_fault(exc):
        # The COMMIT may or may not have reached the database before the connection went.
        return DatabaseUnavailable(
            "The database connection was lost while committing: the changes may or may not"
            " have been saved. Read before retrying (or retry with the same Idempotency-Key)."
        )
    conflict = _sqlstate(exc).startswith(_CONFLICT_SQLSTATE_PREFIXES)
    detail = (
        "The transaction could not be committed because it conflicts with the database state;"
        " nothing was saved."
        if conflict
        else "The transaction could not be committed; nothing was saved."
    )
    return CommitFailed(detail, conflict=conflict)
