"""What one call, one batch item and one frame cost, counted in-process (load-independent).

Run: `.venv/bin/python bench/inprocess.py` (also run by `bench/throughput.py`). The app is
built as `asgi.py` builds it, on a throwaway embedded PostgreSQL with 1,000 grommets, and
driven through raw ASGI messages in this process (no HTTP client, no sockets). Printed, for
the app as shipped (request log, metrics, Server-Timing on) and with the request log and
metrics off:

- Python calls per `GET /grommets/{id}`, per batch item (a batch of 20 less a batch of one,
  over 19) and per WebSocket frame, counted by cProfile: deterministic, whatever else the
  machine runs;
- CPU per GET and per batch item (`time.process_time`, this process alone: the app and the
  few calls of the ASGI driver; PostgreSQL's own processes not counted), the best of
  several alternating rounds (the least disturbed).

Request log lines go to a temporary file, as they would go to a file or a pipe in service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import _SECRET, AUTH, seed_catalog  # noqa: E402

GROMMETS = 1_000
BATCH_SIZE = 20
_apps = 0  # apps built in this process
Message = dict[str, Any]


@dataclass(frozen=True)
class Figures:
    """What one configuration measured."""

    get_calls: float
    item_calls: float
    frame_calls: float
    get_cpu_us: float
    batch_cpu_us: float
    item_cpu_us: float  # a batch of 20 less a batch of one, over 19
    beyond_get_us: float  # a batch of 20 less a single GET, over 19
    frame_cpu_us: float


class Driver:
    """Calls an ASGI app with raw messages: no HTTP client in the measurement."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [(b"authorization", AUTH["authorization"].encode())]

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        raw, _, query = path.partition("?")
        headers = list(self.headers)
        if body:
            headers.append((b"content-type", b"application/json"))
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": raw, "raw_path": raw.encode(),
            "query_string": query.encode(), "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # no disconnect while the call runs
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


class Socket:
    """One WebSocket to the app, spoken to in ASGI messages."""

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]]) -> None:
        self._app = app
        self._headers = headers
        self._in: asyncio.Queue[Message] = asyncio.Queue()
        self._out: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> Socket:
        scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "scheme": "ws", "path": "/ws", "raw_path": b"/ws", "query_string": b"",
            "root_path": "", "headers": self._headers, "subprotocols": [],
            "client": ("127.0.0.1", 50001), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        await self._in.put({"type": "websocket.connect"})
        self._task = asyncio.create_task(self._app(scope, self._in.get, self._out.put))
        accepted = await self._out.get()
        assert accepted["type"] == "websocket.accept", accepted
        return self

    async def frames(self, frames: list[bytes]) -> None:
        """Send `frames` at once and wait for every answer."""
        for frame in frames:
            await self._in.put({"type": "websocket.receive", "text": frame.decode()})
        for _ in frames:
            answer = await self._out.get()
            assert answer["type"] == "websocket.send", answer

    async def close(self) -> None:
        await self._in.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            await self._task


def _random_get() -> str:
    return f"/grommets/{random.randint(1, GROMMETS)}"


def _batch(size: int) -> bytes:
    return orjson.dumps({"load": [_random_get() for _ in range(size)]})


def _frames(count: int) -> list[bytes]:
    return [
        orjson.dumps({"id": str(n), "method": "GET", "path": _random_get()}) for n in range(count)
    ]


@contextlib.asynccontextmanager
async def served(database_url: str, **settings: Any) -> AsyncIterator[Driver]:
    """The app as `asgi.py` builds it, through its lifespan, with `settings` overridden."""
    from asgi_lifespan import LifespanManager
    from container import Container
    from dependency_injector import providers

    from carpool.app import create_app
    from carpool.settings import Settings

    container = Container()
    values = {"database_url": database_url, "seed_demo_data": False, "auth_jwt_secret": _SECRET}
    container.settings.override(providers.Object(Settings(**{**values, **settings})))
    global _apps
    app = create_app(container, name=f"carpool_{_apps}")
    # Sanic's TouchUp rewrites shared classes in place: only the process's first app may.
    app.config.TOUCHUP = _apps == 0
    _apps += 1
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield Driver(app)


async def _seed(driver: Driver) -> None:
    transport = httpx.ASGITransport(app=driver.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=AUTH) as c:
        await seed_catalog(c, grommets=GROMMETS, widgets=0)


def _calls(run: Callable[[], Awaitable[object]], times: int) -> Callable[[], Awaitable[float]]:
    async def count() -> float:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(times):
            await run()
        profile.disable()
        total = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        return float(total) / times

    return count


async def _cpu_us(run: Callable[[], Awaitable[object]], times: int) -> float:
    started = time.process_time()
    for _ in range(times):
        await run()
    return (time.process_time() - started) / times * 1e6


async def measure(driver: Driver, *, rounds: int, times: int) -> Figures:
    """Call counts and CPU of one configuration (the best of `rounds` for CPU)."""

    async def get() -> None:
        status, _ = await driver.call("GET", _random_get())
        assert status == 200

    def batch(size: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            status, body = await driver.call("POST", "/batch", _batch(size))
            assert status == 200 and b'"status":200' in body

        return run

    socket = await Socket(driver.app, driver.headers).open()

    async def frames() -> None:
        await socket.frames(_frames(16))

    for run in (get, batch(1), batch(BATCH_SIZE), frames):  # warm every path
        for _ in range(20):
            await run()
    get_calls = await _calls(get, 20)()
    one = await _calls(batch(1), 20)()
    many = await _calls(batch(BATCH_SIZE), 20)()
    frame_calls = await _calls(frames, 10)() / 16
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, run, n in (
            ("get", get, times),
            ("one", batch(1), times),
            ("many", batch(BATCH_SIZE), max(times // 10, 1)),
            ("frames", frames, max(times // 16, 1)),
        ):
            value = await _cpu_us(run, n)
            best[name] = min(best.get(name, value), value)
    await socket.close()
    return Figures(
        get_calls=get_calls,
        item_calls=(many - one) / (BATCH_SIZE - 1),
        frame_calls=frame_calls,
        get_cpu_us=best["get"],
        batch_cpu_us=best["many"],
        item_cpu_us=(best["many"] - best["one"]) / (BATCH_SIZE - 1),
        beyond_get_us=(best["many"] - best["get"]) / (BATCH_SIZE - 1),
        frame_cpu_us=best["frames"] / 16,
    )


@contextlib.contextmanager
def _stderr_to_file(keep: str | None) -> Iterator[Path]:
    """Fd 2 into a temporary file (log lines are written, and cost what writing costs);
    into `keep` instead, if given (INPROCESS_LOG)."""
    opened = (
        open(keep, "wb")
        if keep
        else tempfile.NamedTemporaryFile(prefix="carpool-inprocess-", suffix=".log")
    )
    with opened as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield Path(log.name)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "as shipped": {},
    "request log off": {"request_log": False},
    "metrics off": {"metrics": False},
    "log and metrics off": {"request_log": False, "metrics": False},
}


async def run_all(database_url: str, *, rounds: int, times: int) -> dict[str, Figures]:
    """Every configuration, measured on one database."""
    from carpool.settings import Settings

    known = set(Settings.model_fields)
    results = {}
    seeded = False
    for name, overrides in CONFIGURATIONS.items():
        usable = {key: value for key, value in overrides.items() if key in known}
        if "metrics" in overrides and "metrics" not in known:
            name += " (metrics cannot be turned off here)"
        async with served(database_url, **usable) as driver:
            if not seeded:
                await _seed(driver)
                seeded = True
            results[name] = await measure(driver, rounds=rounds, times=times)
    return results


def report(results: dict[str, Figures]) -> None:
    print("in-process (cProfile calls; CPU: best round, this process)")
    header = f"  {'':<40} {'GET':>9} {'item':>9} {'frame':>9}"
    print(header + f" {'GET µs':>8} {'batch µs':>9} {'item µs':>8} {'>GET µs':>8} {'frame µs':>9}")
    for name, f in results.items():
        print(
            f"  {name:<40} {f.get_calls:>9.0f} {f.item_calls:>9.1f} {f.frame_calls:>9.1f}"
            f" {f.get_cpu_us:>8.0f} {f.batch_cpu_us:>9.0f} {f.item_cpu_us:>8.1f}"
            f" {f.beyond_get_us:>8.1f} {f.frame_cpu_us:>9.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=4, help="CPU rounds, best kept (4)")
    parser.add_argument("--times", type=int, default=400, help="GETs per CPU round (400)")
    options = parser.parse_args()
    from carpool.data import embedded, migrations

    with tempfile.TemporaryDirectory(prefix="carpool-inprocess-") as data_dir:
        server, url = embedded.start_embedded(Path(data_dir) / "pg", cleanup_mode="delete")
        try:
            migrations.upgrade_sync(url)
            with _stderr_to_file(os.environ.get("INPROCESS_LOG")):
                results = asyncio.run(run_all(url, rounds=options.rounds, times=options.times))
        finally:
            server.cleanup()
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
