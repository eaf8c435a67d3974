"""JSON logs: carpool's and Sanic's loggers, and the request log (one line per call).

The request log is written apart from `logging`: each line is built once, as bytes
(orjson), and the lines of one event-loop turn go out in one write (`LineWriter`), without a
LogRecord, a formatter or a handler's lock per line (docs/performance.md measured that
machinery at most of a GET's price of logging). A host or test that listens on the
`carpool.requests` logger (a handler of its own, on it or on an ancestor) still gets a
record per line, with the same fields.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.data.unit_of_work import Work
from carpool.route_names import route_of

REQUEST_ID_HEADER = "x-request-id"
# What a client's own request id may look like; anything else is replaced, never echoed.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
# The loggers carpool writes JSON lines to; records still propagate to the root logger.
_LOGGERS = ("carpool", "sanic")
_HANDLER_NAME = "carpool-json"
_UTC = datetime.UTC
_WRITTEN = "carpool_written"  # on a record whose line the LineWriter wrote already

requests_log = logging.getLogger("carpool.requests")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def stderr_sink(data: bytes) -> None:
    """Where the request log goes: file descriptor 2 (the process's stderr)."""
    _write_all(2, data)


class LineWriter:
    """Lines (bytes ending in a newline) to `sink`, many at a time.

    A line written inside a running loop waits at most `delay_s` (or until `most` lines
    wait): the calls answered meanwhile share one system call, and nothing is written on
    the hot path but a list append. Outside a loop a line goes at once. Lines still
    pending at exit are written then (a process killed with SIGKILL loses at most the last
    `delay_s` of them). A sink that fails drops the lines it was given (a log must never
    fail a call) and says so once on stderr.
    """

    def __init__(
        self, sink: Callable[[bytes], None], *, delay_s: float = 0.05, most: int = 512
    ) -> None:
        self.sink = sink
        self.delay_s = delay_s
        self._most = most
        self._pending: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._complained = False

    def write(self, line: bytes) -> None:
        """Queue `line` for the next write (or write it now, outside a loop)."""
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.delay_s, self.flush)
            except RuntimeError:
                self.flush()
        elif len(pending) >= self._most:
            self.flush()

    def flush(self) -> None:
        """Write every pending line now."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            self.sink(b"".join(pending))
        except Exception as exc:
            if not self._complained:
                self._complained = True
                print(f"carpool: request log lines lost: {exc!r}", file=sys.__stderr__)


LINES = LineWriter(stderr_sink)
atexit.register(LINES.flush)


class _NotWritten(logging.Filter):
    """Our own handler leaves out the records of lines the LineWriter wrote already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, _WRITTEN, False)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for carpool's and Sanic's loggers, at `level`; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        OrjsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    handler.addFilter(_NotWritten())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)


def request_id(request: Request) -> str:
    """This request's id: the client's `X-Request-ID` if it is a sane one, else a new one.

    Decided once per request and kept on `request.ctx` (sub-requests inherit it).
    """
    known: str | None = request.ctx.request_id
    if known is None:
        given: str = request.headers.get(REQUEST_ID_HEADER, "")
        known = given if _CLIENT_REQUEST_ID.fullmatch(given) else _new_request_id()
        request.ctx.request_id = known
    return known


def _new_request_id() -> str:
    # 128 random bits as 32 hex digits (the form uuid4().hex had): an id, not a secret, so
    # Python's own generator will do; uuid4 read the OS's random source on every request.
    return f"{random.getrandbits(128):032x}"


def mark_start(request: Request) -> None:
    """Note when the request started (for its log line) and settle its request id."""
    request.ctx.started = time.perf_counter()
    request_id(request)


def enabled() -> bool:
    """Whether request log lines are written now (LOG_LEVEL at INFO or below)."""
    return requests_log.isEnabledFor(logging.INFO)


def log_request(request: Request, response: BaseHTTPResponse, uow: Work | None) -> None:
    """The request's log line: method, route, status, duration, queries, request id; for a
    batch, its items' method, route, path, status and duration (`items`, see `ItemJournal`)."""
    if not requests_log.isEnabledFor(logging.INFO):
        return
    fields = _fields(request, response.status, request.ctx.started)
    if uow is not None:
        fields["db_queries"] = uow.stats.queries
        fields["db_ms"] = round(uow.stats.seconds * 1000, 3)
    journal: ItemJournal | None = request.ctx.journal
    if journal is not None:
        fields["items"] = journal.items
    write_line("request", fields)


def log_frame(
    socket: Request,
    journal: ItemJournal,
    status: int,
    started: float,
    uow: Work,
    *,
    batch: bool = False,
) -> None:
    """A WebSocket frame's line (message `subrequest`, `parent_route` "/ws"): what a single
    request's line says, for the frame's own call on its own unit of work. A request frame's
    method, route and path are its item's; a batch frame's are `POST /batch`, with `items`."""
    if not requests_log.isEnabledFor(logging.INFO):
        return
    fields = _fields(socket, status, started)
    fields["parent_route"] = fields["route"]
    if batch:
        fields.update(method="POST", route="/batch", path="/batch")
        fields["items"] = journal.items
    elif journal.items:
        item = journal.items[0]
        fields.update(method=item["method"], route=item["route"], path=item["path"])
    fields["db_queries"] = uow.stats.queries
    fields["db_ms"] = round(uow.stats.seconds * 1000, 3)
    write_line("subrequest", fields)


def write_line(message: str, fields: dict[str, Any]) -> None:
    """One request log line: to the LineWriter; as a record too if anyone else listens."""
    line = {"level": "INFO", "logger": "carpool.requests", "message": message, **fields}
    line["time"] = datetime.datetime.now(_UTC)
    LINES.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    if _others_listen():
        requests_log.info(message, extra={**fields, _WRITTEN: True})


def _others_listen() -> bool:
    """Whether a handler other than carpool's own would see a `carpool.requests` record."""
    logger: logging.Logger | None = requests_log
    while logger is not None:
        for handler in logger.handlers:
            if handler.get_name() != _HANDLER_NAME:
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


class ItemJournal:
    """The items of one batch (or the one item of a frame), as its request log line lists
    them (`items`); when `REQUEST_LOG_ITEMS` is on, a `subrequest` line per item as well.

    `note` is called once per item by the dispatcher (`compose.dispatch`): a dict per item,
    no hook wrapped around its call.
    """

    __slots__ = ("_each", "items")

    def __init__(self, parent: Request, *, each: bool) -> None:
        self.items: list[dict[str, Any]] = []
        # What each item's own line says of its outer call (not the request itself: the
        # journal is kept on the request's ctx, and must not link back to it).
        self._each: dict[str, Any] | None = None
        if each:
            self._each = _fields(parent, None, None)
            self._each["parent_route"] = self._each["route"]

    def note(self, method: str, route: str | None, path: str, status: int, started: float) -> None:
        """One answered item, `started` at that `time.perf_counter()`."""
        item = {
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        self.items.append(item)
        if self._each is not None and requests_log.isEnabledFor(logging.INFO):
            write_line("subrequest", {**self._each, **item})


def journal_for(parent: Request, *, each: bool | None = None) -> ItemJournal | None:
    """A new journal for the items `parent` runs (a batch, a frame), or None when no
    request log line will be written (REQUEST_LOG=false, LOG_LEVEL above INFO).
    `each`: a line per item too (default: REQUEST_LOG_ITEMS)."""
    context = parent.app.ctx
    if not context.request_log or not enabled():
        return None
    if each is None:
        each = bool(context.request_log_items)
    return ItemJournal(parent, each=each)


def caller_of(request: Request) -> str | None:
    """The `sub` of the request's caller, if a token identified one (the token is never kept)."""
    identity = request.ctx.identity
    sub: str | None = identity.sub if identity is not None else None
    return sub


def _fields(request: Request, status: int | None, started: float | None) -> dict[str, Any]:
    elapsed = time.perf_counter() - started if started is not None else None
    fields: dict[str, Any] = {
        "request_id": request_id(request),
        "method": request.method,
        "route": route_of(request),
        "path": request.path,
        "status": status,
        "sub": caller_of(request),
        "duration_ms": round(elapsed * 1000, 3) if elapsed is not None else None,
    }
    if request.app.ctx.tracing is not None:  # else no span to name
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = format(span.trace_id, "032x")
            fields["span_id"] = format(span.span_id, "016x")
    return fields
