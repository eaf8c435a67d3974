"""A socket without a caller must name one (an auth frame) within WS_AUTH_TIMEOUT_S, or it is
closed with 4401; one that does, or that has anonymous scopes, stays open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import make_container
from tests.helpers import create_app, token
from tests.websocket_support import AsgiSocket

TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[Any]:
    application = create_app(make_container(database_url, ws_auth_timeout_s=TIMEOUT_S))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def test_a_socket_that_sends_no_token_in_time_is_closed_with_4401(app: Any) -> None:
    socket = await AsgiSocket(app, headers={}).open()
    closing = await socket.next_message(timeout=TIMEOUT_S * 20)
    assert closing["type"] == "websocket.close" and closing["code"] == 4401
    assert "WS_AUTH_TIMEOUT_S" in closing["reason"]
    await socket.ended()


async def test_a_socket_that_authenticates_in_time_stays_open(app: Any) -> None:
    socket = await AsgiSocket(app, headers={}).open()
    socket.send({"type": "auth", "id": "a", "token": token(sub="late")})
    assert (await socket.answer())["status"] == 200
    await asyncio.sleep(TIMEOUT_S * 2)
    socket.send({"id": "1", "path": "/grommets"})
    assert (await socket.answer())["status"] == 200
    socket.leave()
    await socket.ended()


async def test_a_socket_with_a_handshake_token_has_no_deadline(app: Any) -> None:
    socket = await AsgiSocket(app).open()
    await asyncio.sleep(TIMEOUT_S * 2)
    socket.send({"id": "1", "path": "/grommets"})
    assert (await socket.answer())["status"] == 200
    socket.leave()
    await socket.ended()
