"""Slow clients: a body that trickles in is cut off at REQUEST_READ_TIMEOUT_S with a 408."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.e2e.live_server import LiveServer, live_server
from tests.faults import tally

APP = "tests.e2e.probe_asgi:app"
READ_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    env = {"DATABASE_URL": database_url, "REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S)}
    async with live_server(APP, env, args=["--timeout-keep-alive", "2"]) as live:
        yield live


async def test_a_body_that_never_completes_is_a_408_after_the_read_timeout(
    server: LiveServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /grommets HTTP/1.1\r\nhost: carpool.test\r\ncontent-type: application/json\r\n"
        b'content-length: 100\r\n\r\n{"name": '
    )
    await writer.drain()
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(READ_TIMEOUT_S * 10):
        status_line = await reader.readline()
    held_s = asyncio.get_running_loop().time() - started
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    assert held_s < READ_TIMEOUT_S * 5
    tally.record(slow_body_408=1)


async def test_an_idle_keep_alive_connection_is_closed_by_the_server(server: LiveServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nhost: carpool.test\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(10):
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        while await reader.read(65536):  # the answer, then nothing until the server closes
            pass
    writer.close()
    tally.record(idle_keep_alive_closed=1)
