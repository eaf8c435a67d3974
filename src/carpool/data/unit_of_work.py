"""The unit of work: one connection and one transaction for everything one call does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg

from carpool.data import faults
from carpool.data.engine import Database
from carpool.data.sql import Connection, QueryStats
from carpool.errors import CommitFailed, Conflict, DatabaseUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class Forgetful(Protocol):
    """A per-unit loader: anything that can drop what it has loaded."""

    def forget_all(self) -> None: ...


L = TypeVar("L", bound=Forgetful)


class LookupSharing(Protocol):
    """Loaders a read-only unit borrows instead of making its own (see `Work.share_lookups`)."""

    def loader(self, name: str, make: Callable[[Work], L], work: Work) -> L: ...


# What a statement or the pool may raise when the session fails (beyond carpool's own errors).
_CONNECTION_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
# SQLSTATE classes that mean "your transaction lost a race or broke a rule": a 409, not a 500.
_CONFLICT_SQLSTATE_PREFIXES = ("23", "40")
# Class 40 (transaction rollback: deadlock, serialization failure) raised by a statement.
_LOST_RACE_SQLSTATE_PREFIX = "40"
# statement_timeout (57014, query_canceled) and lock_timeout (55P03) fired: DB_STATEMENT_TIMEOUT_S.
_DEADLINE_SQLSTATES = ("57014", "55P03")


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

    def __init__(
        self,
        database: Database,
        *,
        read_only: bool,
        coalesce: bool = True,
        on_primary: bool = False,
    ) -> None:
        self.read_only = read_only
        # Read-only units read from the replica (if any) unless they must see the primary.
        self.on_primary = on_primary
        self.coalesce = coalesce
        self.stats = QueryStats()
        self._database = database
        self._pool: asyncpg.Pool | None = None
        self._conn: Connection | None = None
        self._in_transaction = False
        self._broken = False  # a statement found the session gone: never back into the pool
        self._savepoints = 0
        self._lock = asyncio.Lock()
        self._finished = False  # no new work once finishing has begun
        self._released = False  # finish has completed: the connection (if any) is back
        self._roll_back_only = False
        self._loaders: dict[str, Forgetful] = {}
        # With a replica: where in the primary's WAL this unit's COMMIT ended (read-your-writes).
        self.committed_at: str | None = None
        self._sharing: LookupSharing | None = None

    @property
    def work(self) -> Work:
        """The unit as its borrowers see it (a view: it cannot finish the unit)."""
        return Work(self)

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
                if _sqlstate(exc) in _DEADLINE_SQLSTATES:
                    faults.log.warning("statement past its deadline (%s)", exc)
                    raise _past_deadline() from exc
                self._raise_if_gone(exc)
                raise
            except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as exc:
                self._raise_if_gone(exc)  # the connection went away, or broke off mid-statement
                raise

    def _session_lost(self) -> bool:
        """Whether the unit's connection closed under it (the server ended the session)."""
        try:
            return self._conn is None or bool(self._conn.raw.is_closed())
        except asyncpg.InterfaceError:
            return True  # asyncpg already took the closed connection off the unit

    async def _bookkeeping(self, conn: Connection, sql: str) -> None:
        """Send a transaction statement (not counted as a query); a lost session is a 503."""
        try:
            await conn.raw.execute(sql)
        except _CONNECTION_ERRORS as exc:
            self._raise_if_gone(exc)
            raise

    def _raise_if_gone(self, exc: BaseException) -> None:
        fault = _gone(exc)
        if fault is None and isinstance(exc, asyncpg.InterfaceError) and self._session_lost():
            fault = _broke_off()
        if fault is not None:
            self._broken = True
            # One line per fault, no traceback: expected, not a bug (docs/faults.md).
            faults.log.warning("%s (%s: %s)", type(fault).__name__, type(exc).__name__, exc)
            raise fault from exc

    def loader(self, name: str, make: Callable[[UnitOfWork], L]) -> L:
        """This unit's loader called `name`, made by `make(self)` the first time it is asked for.

        Loaders live as long as the unit of work; one that is never asked for is never made.
        """
        found = self._loaders.get(name)
        if found is None:
            found = self._loaders[name] = make(self)
        return found  # type: ignore[return-value]

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
                await self._bookkeeping(conn, "BEGIN")
                self._in_transaction = True
            self._savepoints += 1
            name = f"carpool_{self._savepoints}"
            await self._bookkeeping(conn, f"SAVEPOINT {name}")
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
            # Loaders refer back to the unit (their fetch runs on it): unlinked, a finished
            # unit is freed at once, not by the cyclic garbage collector.
            self._loaders = {}
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                if self._broken:
                    # Without a reset on release, a session that broke off mid-statement would
                    # go back to the pool as it is: close it (the pool opens a new one).
                    _terminate(conn.raw)
                    if commit:
                        raise _lost_before_commit()
                elif self._in_transaction:
                    await conn.raw.execute("COMMIT" if commit else "ROLLBACK")
                    if commit and self._database.replica is not None:
                        self.committed_at = await _wal_position(conn.raw)
            except _CONNECTION_ERRORS as exc:
                if not commit and _gone(exc):
                    return  # a session that is gone has rolled back: nothing to do
                raise _commit_failed(exc) from exc
            finally:
                self._in_transaction = False
                assert self._pool is not None
                try:
                    await self._pool.release(conn.raw)
                except _CONNECTION_ERRORS:
                    pass  # asyncpg closed it instead (the pool opens a new one when needed)

    def pool_figures(self, *, size: int) -> faults.PoolFigures:
        """How the pool this unit takes its connection from stands (`size`: its capacity)."""
        return faults.pool_figures(self._own_pool(), size=size)

    def _own_pool(self) -> asyncpg.Pool:
        """The replica's pool for a read-only unit (when there is one), else the primary's."""
        return self._database.pool_for(read_only=self.read_only and not self.on_primary)

    async def _connection(self) -> Connection:
        if self._finished:
            raise UnitOfWorkClosed("this unit of work has already finished")
        if self._conn is None:
            database = self._database
            pool = self._own_pool()
            async with faults.checkout(pool):  # 503 if none in time, or unreachable
                raw = await database.acquire(pool)
                try:
                    if not self.read_only:
                        # Sessions are read-only by default; this unit's transaction may write.
                        await raw.execute("BEGIN READ WRITE")
                        self._in_transaction = True
                except BaseException as exc:
                    fault = _gone(exc)
                    if fault is not None:
                        _terminate(raw)
                    await pool.release(raw)
                    if fault is not None:
                        raise fault from exc
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
        unit = self._unit
        found = unit._loaders.get(name)
        if found is not None:
            return found  # type: ignore[return-value]  # not `cast`: a call per lookup
        sharing = unit._sharing
        if sharing is not None and not unit.has_connection:
            shared = unit._loaders[name] = sharing.loader(name, make, self)
            return shared
        return unit.loader(name, lambda _: make(self))

    def share_lookups(self, sharing: LookupSharing) -> None:
        """Borrow loaders from `sharing` (made from now on; a read-only unit only, before any
        statement): lookups of concurrent read-only frames coalesce (compose/lookup_rounds.py)."""
        if self._unit.read_only and not self._unit.has_connection:
            self._unit._sharing = sharing

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

    def read_on_primary(self) -> None:
        """Read on the primary even with a replica; only before the first statement."""
        if not self._unit.has_connection:
            self._unit.on_primary = True

    def roll_back_at_end(self) -> None:
        """Whatever the answer, the owner rolls back instead of committing."""
        self._unit._roll_back_only = True

    @property
    def rolls_back(self) -> bool:
        """Whether a borrower asked for a rollback: nothing written now will be kept (and a
        failed statement may have aborted the transaction: nothing more can run on it)."""
        return self._unit._roll_back_only

    def pool_figures(self, *, size: int) -> faults.PoolFigures:
        """`UnitOfWork.pool_figures`: how the unit's pool stands."""
        return self._unit.pool_figures(size=size)


class Savepoint:
    """A SAVEPOINT inside a unit of work, kept or undone exactly once."""

    def __init__(self, uow: UnitOfWork, conn: Connection, name: str) -> None:
        self._uow = uow
        self._conn = conn
        self._name = name
        self._done = False
        self.undone = False

    async def keep(self) -> None:
        """Release the savepoint: its writes join the transaction."""
        if not self._done:
            self._done = True
            async with self._uow._lock:
                await self._uow._bookkeeping(self._conn, f"RELEASE SAVEPOINT {self._name}")

    async def undo(self) -> None:
        """Roll back to the savepoint: its writes are gone, the transaction goes on."""
        if not self._done:
            self._done = True
            self.undone = True
            async with self._uow._lock:
                try:
                    await self._uow._bookkeeping(self._conn, f"ROLLBACK TO SAVEPOINT {self._name}")
                finally:
                    # What was loaded since the savepoint may show writes that are now gone.
                    self._uow.forget_loaded()


def _gone(exc: BaseException) -> DatabaseUnavailable | None:
    """DatabaseUnavailable if `exc` means the unit's connection is unusable."""
    if isinstance(exc, asyncpg.InternalClientError):
        # asyncpg's protocol was left mid-operation (a statement cut off when the server went
        # away): the session can neither run nor finish anything more.
        return _broke_off()
    return faults.connection_fault(exc)


def _broke_off() -> DatabaseUnavailable:
    return DatabaseUnavailable(
        "The database connection broke off; nothing was done. Retry after the delay in Retry-After."
    )


def _terminate(raw: asyncpg.Connection) -> None:
    # A connection that closed itself is already detached from the pool: nothing to do.
    with contextlib.suppress(asyncpg.InterfaceError):
        raw.terminate()


async def _wal_position(raw: asyncpg.Connection) -> str | None:
    """The primary's WAL position now, just after a COMMIT: a replica that has replayed up
    to it has that commit. None if it cannot be read (the commit stands either way)."""
    try:
        return str(await raw.fetchval("SELECT pg_current_wal_lsn()::text"))
    except _CONNECTION_ERRORS:
        return None


def _past_deadline() -> DatabaseUnavailable:
    return DatabaseUnavailable(
        "The database did not answer within the statement deadline (DB_STATEMENT_TIMEOUT_S);"
        " nothing was done. Retry after the delay in Retry-After."
    )


def _lost_before_commit() -> DatabaseUnavailable:
    return DatabaseUnavailable(
        "The database connection was lost before the transaction could be committed; nothing"
        " was saved. Retry after the delay in Retry-After."
    )


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def _commit_failed(exc: BaseException) -> CommitFailed | DatabaseUnavailable:
    if _gone(exc):
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
