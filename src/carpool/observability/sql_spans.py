"""A client span per SQL statement, child of whatever span is current when it is sent."""

from __future__ import annotations

import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_SPAN_KEY = "carpool.span"
# Engines already traced: a restarted app must not trace each statement twice.
_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()


class _StatementSpans:
    """SQLAlchemy engine listeners that open and close one span per statement."""

    def __init__(self, tracer: Tracer, database: str | None) -> None:
        self.tracer = tracer
        self.database = database

    def before(
        self, conn: Connection, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        # Statements outside any traced work (none today) would only make orphan traces.
        if not trace.get_current_span().is_recording():
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes = {
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.query.text": statement,
        }
        if self.database:
            attributes["db.namespace"] = self.database
        conn.info[_SPAN_KEY] = self.tracer.start_span(
            operation, kind=SpanKind.CLIENT, attributes=attributes
        )

    def after(
        self, conn: Connection, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        span = conn.info.pop(_SPAN_KEY, None)
        if span is not None:
            span.end()

    def failed(self, ctx: Any) -> None:
        conn = ctx.connection
        span = conn.info.pop(_SPAN_KEY, None) if conn is not None else None
        if span is not None:
            span.record_exception(ctx.original_exception)
            span.set_status(Status(StatusCode.ERROR, type(ctx.original_exception).__name__))
            span.end()


def instrument(engine: AsyncEngine, tracer: Tracer) -> None:
    """Trace every statement `engine` sends (parameters are never recorded)."""
    sync_engine = engine.sync_engine
    if sync_engine in _instrumented:
        return
    _instrumented.add(sync_engine)
    spans = _StatementSpans(tracer, engine.url.database)
    event.listen(sync_engine, "before_cursor_execute", spans.before)
    event.listen(sync_engine, "after_cursor_execute", spans.after)
    event.listen(sync_engine, "handle_error", spans.failed)
