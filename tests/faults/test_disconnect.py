"""HTTP and WebSocket clients that leave before their answer: calls cancelled, nothing kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from tests.conftest import count
from tests.e2e.live_server import LiveServer, live_server
from tests.faults import tally
from tests.helpers import AUTH
from tests.websocket_support import lingering_work, slow_write_batch, wait_for_sleeper

APP = "tests.e2e.probe_asgi:app"


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(APP, {"DATABASE_URL": database_url}) as live:
        yield live
    assert "Traceback" not in live.log(), live.log()


def raw_post(path: str, body: object) -> bytes:
    data = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: carpool.test\r\ncontent-type: application/json\r\n"
        f"authorization: {AUTH['authorization']}\r\n"
        f"content-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def leave_mid_call(server: LiveServer, request: bytes, admin_engine: AsyncEngine) -> None:
    """Send `request`, wait until it sleeps in the database, then drop the connection."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    await wait_for_sleeper(admin_engine)
    writer.transport.abort()


def slow_batch(name: str, *, atomic: bool) -> dict[str, object]:
    grommet = {"name": name, "material": "brass", "diameter_mm": 5}
    return {
        "atomic": atomic,
        "requests": [
            {"method": "POST", "path": "/grommets", "body": grommet},
            {"path": "/_probe/sleep?s=4"},
        ],
    }


@pytest.mark.parametrize("atomic", [True, False])
async def test_a_batch_whose_client_left_commits_nothing_and_holds_nothing(
    server: LiveServer, admin_engine: AsyncEngine, atomic: bool
) -> None:
    await leave_mid_call(
        server, raw_post("/batch", slow_batch("left", atomic=atomic)), admin_engine
    )
    # Well before the sleeping item would have ended: the call was cancelled, not finished.
    assert await lingering_work(admin_engine, within=2.5) == [], "no session held after the call"
    await asyncio.sleep(2.5)
    assert await count(admin_engine, "grommets") == 0, "nothing committed"
    tally.record(http_left_mid_batch=1, http_left_committed=0)


async def test_many_clients_leaving_mid_batch_commit_nothing(
    server: LiveServer, admin_engine: AsyncEngine
) -> None:
    connections = []
    for n in range(10):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw_post("/batch", slow_batch(f"left-{n}", atomic=False)))
        await writer.drain()
        connections.append(writer)
    await wait_for_sleeper(admin_engine)
    await asyncio.sleep(0.5)
    for writer in connections:
        writer.transport.abort()
    assert await lingering_work(admin_engine, within=3.0) == []
    assert await count(admin_engine, "grommets") == 0
    tally.record(http_left_mid_batch=10, http_left_committed=0)


async def test_websocket_clients_leaving_mid_batch_commit_nothing(
    server: LiveServer, admin_engine: AsyncEngine
) -> None:
    sockets = []
    for n in range(5):
        ws = await connect(server.ws_url, additional_headers=AUTH)
        await ws.send(orjson.dumps(slow_write_batch(f"b{n}", f"ws-left-{n}", 4)).decode())
        sockets.append(ws)
    await wait_for_sleeper(admin_engine)
    await asyncio.sleep(0.3)
    for ws in sockets:
        ws.transport.abort()
    assert await lingering_work(admin_engine, within=3.0) == []
    committed = await count(admin_engine, "grommets")
    tally.record(ws_left_mid_batch=len(sockets), ws_left_committed=committed)
    assert committed == 0
