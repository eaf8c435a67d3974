"""`until_disconnect` on its own: the handler runs in the caller's task, one watcher cancels it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from sanic.models.asgi import MockTransport
from sanic.response import BaseHTTPResponse, HTTPResponse

from carpool.web.disconnect import CLIENT_CLOSED_REQUEST, until_disconnect


def _request(receive: Any) -> Any:
    async def send(message: Any) -> None:
        return None

    return SimpleNamespace(transport=MockTransport({"type": "http"}, receive, send))


async def _answer_after(event: asyncio.Event, log: list[str]) -> BaseHTTPResponse:
    try:
        await event.wait()
    except asyncio.CancelledError:
        log.append("unwound")
        raise
    return HTTPResponse(b"ok", status=200)


async def test_a_client_that_leaves_gets_a_499_and_the_handler_unwinds() -> None:
    gone = asyncio.Event()

    async def receive() -> dict[str, str]:
        await gone.wait()
        return {"type": "http.disconnect"}

    log: list[str] = []
    call = asyncio.ensure_future(
        until_disconnect(_request(receive), _answer_after(asyncio.Event(), log))
    )
    await asyncio.sleep(0.01)
    gone.set()
    response = await call
    assert response.status == CLIENT_CLOSED_REQUEST
    assert log == ["unwound"]
    assert call.cancelling() == 0  # the watcher's cancellation was taken back


async def test_an_answer_before_the_disconnect_stands_and_the_watcher_stops() -> None:
    async def receive() -> dict[str, str]:
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    ready = asyncio.Event()
    ready.set()
    before = len(asyncio.all_tasks())
    response = await until_disconnect(_request(receive), _answer_after(ready, []))
    assert response.status == 200
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before  # no watcher left behind


async def test_the_server_stopping_is_not_taken_for_a_client_leaving() -> None:
    async def receive() -> dict[str, str]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    log: list[str] = []
    call = asyncio.ensure_future(
        until_disconnect(_request(receive), _answer_after(asyncio.Event(), log))
    )
    await asyncio.sleep(0.01)
    call.cancel()  # as the server does on shutdown
    with pytest.raises(asyncio.CancelledError):
        await call
    assert log == ["unwound"]


async def test_a_broken_channel_leaves_the_call_to_answer() -> None:
    async def receive() -> dict[str, str]:
        raise RuntimeError("the channel broke")

    ready = asyncio.Event()
    log: list[str] = []
    call = asyncio.ensure_future(until_disconnect(_request(receive), _answer_after(ready, log)))
    await asyncio.sleep(0.01)
    ready.set()
    assert (await call).status == 200
