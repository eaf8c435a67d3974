"""Prometheus metrics of one worker, and their exposition for all workers at once.

With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR (an empty directory, the same for
every worker, emptied before they start; `make run` does): each worker writes its figures
there and `/metrics`, whichever worker answers, reads them all (prometheus-client's
multi-process mode). Unset, `/metrics` shows the answering worker alone.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sanic.request import Request

from carpool.data.faults import PoolFigures
from carpool.route_names import route_of

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
POOL_SAMPLE_EVERY_S = 1.0

CALLS = Counter(
    "carpool_calls",
    "Calls answered, by route template, method, status and transport (single, batch_item, frame).",
    ["route", "method", "status", "transport"],
)
REFUSALS = Counter(
    "carpool_refusals",
    "503 and 429 answers, by status and problem type (busy, database-unavailable, ...).",
    ["status", "type"],
)
UNIT_SECONDS = Histogram(
    "carpool_unit_of_work_seconds",
    "Life of a unit of work, open to finished, by outcome (commit, rollback, refused).",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UNIT_QUERIES = Histogram(
    "carpool_unit_of_work_queries",
    "SQL statements one unit of work sent (BEGIN, COMMIT, savepoints not counted).",
    buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500),
)
POOL_SIZE = Gauge(
    "carpool_db_pool_size", "Connections the pools may open.", multiprocess_mode="livesum"
)
POOL_IN_USE = Gauge(
    "carpool_db_pool_in_use", "Connections checked out now.", multiprocess_mode="livesum"
)
POOL_WAITING = Gauge(
    "carpool_db_pool_waiting",
    "Callers waiting for a connection now.",
    multiprocess_mode="livesum",
)
UPSTREAM_CALLS = Counter(
    "carpool_upstream_calls",
    "Calls to upstream services, by service and outcome (ok, error, timeout).",
    ["service", "outcome"],
)
SOCKETS_OPEN = Gauge("carpool_websockets_open", "WebSockets open now.", multiprocess_mode="livesum")
FRAMES_IN_FLIGHT = Gauge(
    "carpool_frames_in_flight", "WebSocket frames being answered now.", multiprocess_mode="livesum"
)


def exposition() -> bytes:
    """Every metric in Prometheus' text format: of all workers in multi-process mode (this
    worker's counts made up to now; another worker's may lag by FLUSH_S)."""
    flush()
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


# Label children, looked up once per label tuple: `.labels()` takes a lock, checks and joins
# its arguments on every call (a few per cent of a GET, counted per batch item and frame).
# Routes, methods, statuses and transports are few, so these stay small.
_calls: dict[tuple[str | None, str, int, str], Any] = {}
_units: dict[str, Any] = {}
_counting = True  # METRICS=false: calls and units are not counted (one app per process)


def configure(*, enabled: bool) -> None:
    """Count calls and units of work (METRICS), or not; for the whole process."""
    global _counting
    _counting = enabled


# Units of work observed since the last flush, in plain dicts: a histogram's `observe` per
# unit takes a lock and checks (and, in multi-process mode, writes a file) twice per bucket
# and sum; added up here, the histograms are touched once per bucket every FLUSH_S instead.
# (Calls are counted at once: a scrape must count every call answered before it.)
FLUSH_S = 0.05
_pending_buckets: dict[tuple[Any, int], int] = {}
_pending_sums: dict[Any, float] = {}
_flush_timer: asyncio.TimerHandle | None = None


def _soon() -> None:
    """Flush within FLUSH_S (at once outside an event loop)."""
    global _flush_timer
    if _flush_timer is None:
        try:
            _flush_timer = asyncio.get_running_loop().call_later(FLUSH_S, flush)
        except RuntimeError:
            flush()


def flush() -> None:
    """Add every unit of work observed so far to the histograms."""
    global _flush_timer, _pending_buckets, _pending_sums
    timer, _flush_timer = _flush_timer, None
    if timer is not None:
        timer.cancel()
    buckets, sums = _pending_buckets, _pending_sums
    _pending_buckets, _pending_sums = {}, {}
    # prometheus-client's own Histogram.observe, by the observation: a bucket, then the sum.
    for (child, index), times in buckets.items():
        child._buckets[index].inc(times)
    for child, total in sums.items():
        child._sum.inc(total)


def count_call(request: Request, status: int, transport: str) -> None:
    """One answered call (`transport`: single, batch_item or frame), counted at once: a
    scrape answered by any worker counts every call answered before it."""
    if _counting:
        _calls_child(request, status, transport)[1].inc()


def _calls_child(request: Request, status: int, transport: str) -> tuple[Any, Any]:
    """The key of a call's `carpool_calls` child, and the child."""
    route = request.route
    key = (route.uri if route is not None else None, request.method, status, transport)
    child = _calls.get(key)
    if child is None:
        name = route_of(request) or "unmatched"
        child = _calls[key] = CALLS.labels(name, request.method, str(status), transport)
    return key, child


class CallTally:
    """Calls counted in a plain dict, added to `carpool_calls` at once by `flush` (a batch's
    items: a counter's `inc` per item takes its lock and checks, a few per cent of an item)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}

    def count(self, request: Request, status: int, transport: str) -> None:
        """One answered call, counted at the next `flush`."""
        if not _counting:
            return
        key = _calls_child(request, status, transport)[0]
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def flush(self) -> None:
        """Add what was counted to `carpool_calls`."""
        counts, self._counts = self._counts, {}
        for key, times in counts.items():
            _calls[key].inc(times)


def count_refusal(status: int, problem_type: str) -> None:
    """A 503 or 429 answer of type `problem_type`."""
    REFUSALS.labels(str(status), problem_type.rsplit(":", 1)[-1]).inc()


def observe_unit(outcome: str, seconds: float, queries: int) -> None:
    """A finished unit of work."""
    if not _counting:
        return
    child = _units.get(outcome)
    if child is None:
        child = _units[outcome] = UNIT_SECONDS.labels(outcome)
    _observe(child, seconds)
    _observe(UNIT_QUERIES, queries)
    _soon()


def _observe(histogram: Any, amount: float) -> None:
    # The bucket `Histogram.observe` would count it in: the first upper bound >= amount.
    key = (histogram, bisect.bisect_left(histogram._upper_bounds, amount))
    _pending_buckets[key] = _pending_buckets.get(key, 0) + 1
    _pending_sums[histogram] = _pending_sums.get(histogram, 0.0) + amount


@contextlib.contextmanager
def tracking(gauge: Gauge) -> Iterator[None]:
    """`gauge` one higher while the block runs."""
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


async def sample_pool(figures: Callable[[], PoolFigures], *, every_s: float) -> None:
    """Keep the pool gauges current, every `every_s` seconds, until cancelled."""
    while True:
        now = figures()
        POOL_SIZE.set(now.size)
        POOL_IN_USE.set(now.in_use)
        POOL_WAITING.set(now.waiting)
        await asyncio.sleep(every_s)
