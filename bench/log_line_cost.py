"""What one request log line costs, written five ways (CPU per line, this process).

Run: `.venv/bin/python bench/log_line_cost.py` (also run by `make bench`). Each way writes
the same fields (a GET's line) to a temporary file, LINES lines per round, inside a running
event loop, ten lines per loop turn (what a busy worker answers in a turn); the best of
ROUNDS rounds is printed:

- `logging` + python-json-logger (what carpool wrote before: a LogRecord, a formatter and a
  StreamHandler's lock and flush per line);
- the standard library's QueueHandler (the record is made and queued on the loop; a
  QueueListener thread formats and writes it; its CPU counts too: it is the same process);
- structlog with orjson (`BytesLoggerFactory`, `JSONRenderer(serializer=orjson.dumps)`),
  if installed (it is not a dependency: `pip install structlog` to compare);
- carpool's `LineWriter`: the line built once as bytes with orjson, the lines of one loop
  turn written together (`carpool.observability.logs`);
- the same, written one line per write (what the writer saves in system calls).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import logging.handlers
import os
import queue
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from carpool.observability.logs import LineWriter

LINES = 20_000
PER_TURN = 10
ROUNDS = 5
FIELDS: dict[str, Any] = {
    "request_id": "4b8acc37d8bf44498177c4601a3e5769",
    "method": "GET",
    "route": "/grommets/{grommet_id}",
    "path": "/grommets/17",
    "status": 200,
    "sub": "bench",
    "duration_ms": 2.188,
    "db_queries": 1,
    "db_ms": 0.52,
}


def _json_logger(name: str, stream: Any) -> logging.Logger:
    from pythonjsonlogger.orjson import OrjsonFormatter

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        OrjsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def way_logging(out: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    logger = _json_logger("bench.logging", out)
    return (lambda: logger.info("request", extra=FIELDS)), out.flush


def way_queue(out: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    target = _json_logger("bench.queue-target", out).handlers[0]
    lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(lines, target)
    listener.start()
    logger = logging.getLogger("bench.queue")
    logger.handlers[:] = [logging.handlers.QueueHandler(lines)]
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def done() -> None:
        listener.stop()  # waits until the thread has written every line
        out.flush()

    return (lambda: logger.info("request", extra=FIELDS)), done


def way_structlog(out: Any) -> tuple[Callable[[], None], Callable[[], None]] | None:
    try:
        import structlog
    except ImportError:
        return None
    logger = structlog.wrap_logger(
        structlog.BytesLogger(out.buffer),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        cache_logger_on_first_use=True,
    )
    return (lambda: logger.info("request", logger="carpool.requests", **FIELDS)), out.flush


def _carpool_line() -> bytes:
    line = {"level": "INFO", "logger": "carpool.requests", "message": "request", **FIELDS}
    line["time"] = datetime.datetime.now(datetime.UTC)
    return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


def way_writer(out: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    fd = out.fileno()
    writer = LineWriter(lambda data: _write(fd, data))
    return (lambda: writer.write(_carpool_line())), writer.flush


def way_writer_per_line(out: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    fd = out.fileno()
    return (lambda: _write(fd, _carpool_line())), lambda: None


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _round(way: Callable[[Any], Any], path: Path) -> float | None:
    with path.open("w") as out:
        made = way(out)
        if made is None:
            return None
        line, done = made
        started = time.process_time()
        for _ in range(LINES // PER_TURN):
            for _ in range(PER_TURN):
                line()
            await asyncio.sleep(0)  # the end of a loop turn
        done()
        return (time.process_time() - started) / LINES * 1e6


async def main() -> None:
    ways = {
        "logging + python-json-logger": way_logging,
        "QueueHandler (+ its listener thread)": way_queue,
        "structlog + orjson (BytesLogger)": way_structlog,
        "carpool LineWriter (a write per turn)": way_writer,
        "orjson bytes, a write per line": way_writer_per_line,
    }
    best: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="carpool-log-cost-") as directory:
        for _ in range(ROUNDS):
            for name, way in ways.items():
                cost = await _round(way, Path(directory) / "lines.log")
                if cost is not None:
                    known = best.get(name)
                    best[name] = cost if known is None else min(known, cost)
                else:
                    best.setdefault(name, None)
    print(f"one request log line, CPU per line (best of {ROUNDS} rounds of {LINES} lines)")
    base = best["logging + python-json-logger"] or 1.0
    for name, cost in best.items():
        text = "not installed" if cost is None else f"{cost:6.2f} µs  {cost / base:5.2f}x"
        print(f"  {name:<40} {text}")


if __name__ == "__main__":
    asyncio.run(main())
