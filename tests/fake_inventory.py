"""A real inventory service on 127.0.0.1 for tests: stock levels, and the ways it can fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FakeInventory:
    """`GET /stock/{grommet_id}` answering from `stock`, or as `mode` says.

    Modes: "ok", "slow" (answers only after `release` is set), "error" (500),
    "bad-json", "wrong-shape", "huge" (streams HUGE_BYTES of JSON, counting what it
    managed to send in `sent`), "huge-declared" (a Content-Length of HUGE_BYTES, little
    sent) and "trickle" (a byte every 50 ms, for ever). Every request's headers are kept
    in `seen`. A grommet not in `stock` has `default_stock` units, or is unknown (404) if
    that is None.
    """

    stock: dict[int, int] = field(default_factory=dict)
    default_stock: int | None = None
    mode: str = "ok"
    delay_s: float = 0.0
    seen: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    sent: int = 0

    def reset(self) -> None:
        self.stock.clear()
        self.mode = "ok"
        self.delay_s = 0.0
        self.seen.clear()
        self.max_in_flight = 0
        self.sent = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        grommet_id = int(request.match_info["grommet_id"])
        self.seen.append({**request.headers, "path": request.path})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            if self.mode == "slow":
                await asyncio.wait_for(self.release.wait(), timeout=10)
            if self.mode == "error":
                return web.Response(status=500, text="inventory is on fire")
            if self.mode == "bad-json":
                return web.Response(text="{not json", content_type="application/json")
            if self.mode in STREAMING:
                return await STREAMING[self.mode](self, request, grommet_id)
            if self.mode == "wrong-shape":
                return web.json_response({"grommet_id": grommet_id, "available": -3})
            available = self.stock.get(grommet_id, self.default_stock)
            if available is None:
                return web.json_response({"detail": "unknown grommet"}, status=404)
            return web.json_response({"grommet_id": grommet_id, "available": available})
        finally:
            self.in_flight -= 1


HUGE_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024


async def _huge(fake: FakeInventory, request: web.Request, grommet_id: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "application/json"})
    await response.prepare(request)
    padding = b" " * _CHUNK
    try:
        await response.write(b'{"grommet_id": %d, "pad": "' % grommet_id)
        while fake.sent < HUGE_BYTES:
            await response.write(padding)
            fake.sent += len(padding)
        await response.write(b'", "available": 1}')
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading and went away: what we wanted to see
    return response


async def _huge_declared(
    fake: FakeInventory, request: web.Request, grommet_id: int
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "application/json"})
    response.content_length = HUGE_BYTES
    await response.prepare(request)
    try:
        await response.write(b"{")
        fake.sent += 1
        await asyncio.sleep(5)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def _trickle(
    fake: FakeInventory, request: web.Request, grommet_id: int
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "application/json"})
    await response.prepare(request)
    try:
        for _ in range(1000):
            await response.write(b" ")
            fake.sent += 1
            await asyncio.sleep(0.05)
    except (ConnectionError, RuntimeError):
        pass
    return response


STREAMING = {"huge": _huge, "huge-declared": _huge_declared, "trickle": _trickle}


@asynccontextmanager
async def fake_inventory() -> AsyncIterator[FakeInventory]:
    """A FakeInventory listening on a free port of 127.0.0.1 until the block ends."""
    fake = FakeInventory()
    app = web.Application()
    app.router.add_get("/stock/{grommet_id:[0-9]+}", fake.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()
