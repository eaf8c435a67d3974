"""SQL built once by SQLAlchemy, run on asyncpg: every statement counted, timed and traced."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as _asyncpg_dialect
from sqlalchemy.sql import ClauseElement

Row = dict[str, Any]
# Statement parameters by name; plain SQL text takes them by position ($1, $2, ...).
Params = Mapping[str, Any] | Sequence[Any]
_DIALECT = _asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement compiled to asyncpg's SQL (`$1, $2, ...`) with its parameter names in order."""

    sql: str
    names: tuple[str, ...]

    def args(self, params: Params) -> list[Any]:
        """The positional arguments for `params` (every named parameter must be there)."""
        if not isinstance(params, Mapping):
            raise TypeError("a compiled statement takes its parameters by name")
        return [params[name] for name in self.names]


def compile_statement(statement: ClauseElement) -> Statement:
    """Compile a SQLAlchemy statement once (at import, or once per shape) for asyncpg.

    Parameters are bind parameters by name; literal values in the statement are refused,
    because they would be frozen into the compiled text.
    """
    compiled: Any = statement.compile(dialect=_DIALECT)
    names = tuple(compiled.positiontup or ())
    frozen = [name for name in names if compiled.binds[name].value is not None]
    if frozen:
        raise ValueError(f"statement has literal values for {frozen}; use bindparam()")
    return Statement(str(compiled), names)


@dataclass(slots=True)
class QueryStats:
    """Queries sent and seconds spent in the database by one unit of work."""

    queries: int = 0
    seconds: float = 0.0

    def server_timing(self) -> str:
        """The value of a `Server-Timing` header describing these stats."""
        return f'db;dur={self.seconds * 1000:.2f};desc="{self.queries} queries"'


class StatementSpan(Protocol):
    """What a tracer hands back for one statement: ended once, with its error if any."""

    def end(self, error: BaseException | None) -> None: ...


class StatementTracer(Protocol):
    """Opens a span per statement (see observability/sql_spans.py); None: nothing to trace."""

    def start(self, sql: str) -> StatementSpan | None: ...


class Connection:
    """A unit of work's asyncpg connection as queries see it.

    Every statement sent through it is one query in the unit's stats (with its time in the
    database) and one span when tracing is on. Statements run as prepared statements from
    asyncpg's per-connection cache; rows come back as plain dicts. Transaction bookkeeping
    (BEGIN, COMMIT, SAVEPOINT, ...) is the unit's, sent around this class, never counted.
    """

    __slots__ = ("_stats", "_tracer", "raw")

    def __init__(
        self, raw: asyncpg.Connection, stats: QueryStats, tracer: StatementTracer | None
    ) -> None:
        self.raw = raw
        self._stats = stats
        self._tracer = tracer

    async def rows(self, statement: Statement | str, params: Params = ()) -> list[Row]:
        """Every row the statement answers, as dicts keyed by column name."""
        records = await self._send(self.raw.fetch, statement, params)
        return [dict(record) for record in records]

    async def row(self, statement: Statement | str, params: Params = ()) -> Row | None:
        """The first row the statement answers, or None."""
        found = await self._send(self.raw.fetchrow, statement, params)
        return None if found is None else dict(found)

    async def value(self, statement: Statement | str, params: Params = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        return await self._send(self.raw.fetchval, statement, params)

    async def execute(self, statement: Statement | str, params: Params = ()) -> None:
        """Run a statement for its effect."""
        await self._send(self.raw.fetch, statement, params)

    async def _send(self, method: Any, statement: Statement | str, params: Any) -> Any:
        if isinstance(statement, Statement):
            sql = statement.sql
            args: Sequence[Any] = statement.args(params) if statement.names else ()
        else:
            sql, args = statement, _positional(params)
        span = self._tracer.start(sql) if self._tracer is not None else None
        stats = self._stats
        started = time.perf_counter()
        try:
            result = await method(sql, *args)
        except BaseException as exc:
            stats.seconds += time.perf_counter() - started
            stats.queries += 1
            if span is not None:
                span.end(exc)
            raise
        stats.seconds += time.perf_counter() - started
        stats.queries += 1
        if span is not None:
            span.end(None)
        return result


def _positional(params: Params) -> Sequence[Any]:
    if isinstance(params, Mapping):
        if params:
            raise TypeError("plain SQL takes positional parameters ($1, $2, ...), not names")
        return ()
    return params
