"""A client span per SQL statement, child of whatever span is current when it is sent."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from carpool.data.engine import Database


class _StatementSpan:
    """One statement's span; ended once, with the statement's error if it failed."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def end(self, error: BaseException | None) -> None:
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self._span.end()


class _StatementSpans:
    """The tracer every unit-of-work connection of a database reports its statements to."""

    def __init__(self, tracer: Tracer, database: str | None) -> None:
        self.tracer = tracer
        self.database = database

    def start(self, sql: str) -> _StatementSpan | None:
        # Statements outside any traced work (none today) would only make orphan traces.
        if not trace.get_current_span().is_recording():
            return None
        operation = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "SQL"
        attributes = {
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.query.text": sql,
        }
        if self.database:
            attributes["db.namespace"] = self.database
        span = self.tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
        return _StatementSpan(span)


def instrument(database: Database, tracer: Tracer) -> None:
    """Trace every statement units of work send to `database` (parameters are never recorded).

    Instrumenting again (a restarted app) replaces the tracer: each statement is traced once.
    """
    database.tracer = _StatementSpans(tracer, database.database_name)
