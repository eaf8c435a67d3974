"""`/ws` at its edges: a client that never reads, frames larger than a request may be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from tests.conftest import count, make_container, wait_for_idle_pool
from tests.helpers import AUTH, create_app
from tests.websocket_support import AsgiSocket


class UnreadSocket(AsgiSocket):
    """A socket whose client reads nothing until told to: every answer the app sends blocks,
    as a server's send does once the peer's buffers are full."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.reading = asyncio.Event()

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await self.reading.wait()
        await super()._send(message)


async def test_a_client_that_never_reads_makes_the_server_stop_reading(
    app: Any, client: httpx.AsyncClient, container: Any, engine: Database
) -> None:
    limit = container.settings().ws_max_in_flight
    socket = await UnreadSocket(app).open()
    sent = limit * 10
    for n in range(sent):
        socket.send({"id": str(n), "path": "/grommets"})
    await asyncio.sleep(0.3)

    # Answers that cannot go out count as in flight: the server holds at most `limit` of them
    # and one frame ahead, and none holds a database connection while it waits.
    assert socket.read_by_app <= 1 + limit + 1
    # (Polled: on a loaded machine the frames may still be finishing their units; stuck
    # frames that held their connections would never get there.)
    assert await wait_for_idle_pool(engine) == 0
    socket.reading.set()
    received = [await socket.answer() for _ in range(sent)]
    assert sorted(int(answer["id"]) for answer in received) == list(range(sent))
    socket.leave()
    await socket.ended()


@pytest.fixture(scope="module")
async def roomy_frames(database_url: str) -> AsyncIterator[Any]:
    """An app whose frames may be larger than its HTTP request bodies."""
    container = make_container(database_url, request_max_bytes=2048, ws_max_frame_bytes=65536)
    application = create_app(container)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def test_a_frame_body_larger_than_a_request_may_send_is_413_as_over_http(
    roomy_frames: Any, admin_engine: AsyncEngine
) -> None:
    body = {"name": "M6", "material": "brass", "diameter_mm": 6, "note": "x" * 3000}
    transport = httpx.ASGITransport(app=roomy_frames)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://roomy", headers=AUTH
    ) as http:
        over_http = await http.post("/grommets", content=orjson.dumps(body))
    socket = await AsgiSocket(roomy_frames).open()
    socket.send({"id": "big", "method": "POST", "path": "/grommets", "body": body})
    answer = await socket.answer()
    socket.leave()
    await socket.ended()

    assert over_http.status_code == 413
    assert answer["status"] == 413
    assert answer["body"] == over_http.json()
    assert await count(admin_engine, "grommets") == 0
    assert await wait_for_idle_pool(roomy_frames.ctx.container.database()) == 0
