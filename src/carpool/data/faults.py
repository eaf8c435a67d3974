"""Database faults the client can do nothing about but wait: told apart here, answered 503.

`checkout` wraps the one place a unit of work gets its connection; `connection_fault` tells
a statement's error that means "the connection is gone" from one the statement caused.
Works on what SQLAlchemy raises and on what asyncpg raises bare.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from carpool.errors import DatabaseBusy, DatabaseUnavailable

log = logging.getLogger("carpool.data")
# SQLSTATE classes and codes that mean "no session": connection exceptions (08), the server
# shutting down or starting (57P01-57P03), too many connections (53300, a capacity limit).
_GONE_PREFIXES = ("08", "57P01", "57P02", "57P03")
_CAPACITY = ("53300",)
_UNAVAILABLE = (
    "The database cannot be reached right now; nothing was done. Retry after the delay"
    " in Retry-After."
)
_BUSY = "Every database connection is busy; nothing was done. Retry after the delay in Retry-After."


@dataclass
class PoolFigures:
    """How a pool stands: connections it may open, in use, and callers waiting for one."""

    size: int
    in_use: int
    waiting: int

    @property
    def saturated(self) -> bool:
        """Whether no connection is free and none may be opened."""
        return self.in_use >= self.size

    def as_dict(self) -> dict[str, int]:
        return {"size": self.size, "in_use": self.in_use, "waiting": self.waiting}


_waiting: dict[int, int] = {}  # by id() of the pool's owner: callers inside `checkout`


@asynccontextmanager
async def checkout(owner: object) -> AsyncIterator[None]:
    """Around getting a connection from `owner` (an engine or pool): raises DatabaseBusy if
    none was free in time, DatabaseUnavailable if the database cannot be reached."""
    key = id(owner)
    _waiting[key] = _waiting.get(key, 0) + 1
    try:
        yield
    except Exception as exc:
        fault = checkout_fault(exc)
        if fault is None:
            raise
        log.warning("%s (%s: %s)", type(fault).__name__, type(exc).__name__, exc)
        raise fault from exc
    finally:
        _waiting[key] -= 1
        if not _waiting[key]:
            del _waiting[key]


def checkout_fault(exc: BaseException) -> DatabaseBusy | DatabaseUnavailable | None:
    """The 503 that getting a connection's `exc` means, or None if it is not a database fault."""
    if _is_pool_timeout(exc) or _sqlstate(exc).startswith(_CAPACITY):
        return DatabaseBusy(_BUSY)
    return connection_fault(exc) or (
        DatabaseUnavailable(_UNAVAILABLE) if isinstance(exc, OSError) else None
    )


def connection_fault(exc: BaseException) -> DatabaseUnavailable | None:
    """DatabaseUnavailable if `exc` (raised by a statement) means the connection is gone."""
    cause = getattr(exc, "orig", None) or exc
    gone = (
        bool(getattr(exc, "connection_invalidated", False))
        or isinstance(cause, OSError | ConnectionError)
        or _sqlstate(exc).startswith(_GONE_PREFIXES)
        or type(cause).__name__ in ("ConnectionDoesNotExistError", "CannotConnectNowError")
        or "connection is closed" in str(cause)
    )
    return DatabaseUnavailable(_UNAVAILABLE) if gone else None


def pool_figures(owner: Any, *, size: int) -> PoolFigures:
    """How the pool of `owner` (a SQLAlchemy engine, an asyncpg pool, or an object holding
    one as `primary`) stands; `size` is the most connections it may open."""
    pool = getattr(owner, "pool", None) or getattr(owner, "primary", None) or owner
    in_use = 0
    if hasattr(pool, "checkedout"):  # SQLAlchemy's QueuePool
        in_use = int(pool.checkedout())
    elif hasattr(pool, "get_idle_size"):  # asyncpg
        in_use = int(pool.get_size()) - int(pool.get_idle_size())
    return PoolFigures(size=size, in_use=in_use, waiting=_waiting.get(id(owner), 0))


def _is_pool_timeout(exc: BaseException) -> bool:
    # SQLAlchemy's QueuePool raises its own TimeoutError; an asyncio timeout around an asyncpg
    # pool's acquire raises the builtin one.
    return isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError"


def _sqlstate(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return str(getattr(cause, "sqlstate", "") or getattr(cause, "pgcode", "") or "")
