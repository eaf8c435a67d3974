"""A socket's updates: a slow client gets the latest answer, not a backlog."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import orjson

from carpool.compose.dispatch import SubResponse
from carpool.compose.live import Subscription
from carpool.compose.multiplex import AsgiWebSocket
from carpool.compose.subscriptions import LiveSocket


class SlowPeer:
    """The client end of a socket that reads only when the test lets it."""

    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.waiting.set()
        await self.gate.wait()
        self.sent.append(orjson.loads(message["text"]))


def answer(version: int) -> SubResponse:
    return SubResponse(200, {}, orjson.dumps({"v": version}), "application/json")


async def test_a_slow_client_gets_the_latest_answer_and_the_socket_keeps_one_per_subscription() -> (
    None
):
    peer = SlowPeer()
    live = LiveSocket(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AsgiWebSocket(peer.receive, peer.send),
        max_subscriptions=10,
    )
    subs = [Subscription(name, "/x", None, live) for name in ("a", "b")]  # type: ignore[arg-type]
    live.answered(subs[0], answer(1))
    await asyncio.wait_for(peer.waiting.wait(), 5)  # v1 is on its way; the client is not reading
    for version in range(2, 50):
        for sub in subs:
            live.answered(sub, answer(version))
    assert len(live._outbox) == 2, "one unsent update per subscription, however many versions"
    peer.gate.set()
    for _ in range(100):
        if len(peer.sent) == 3:
            break
        await asyncio.sleep(0.01)
    assert [(frame["id"], frame["body"]["v"]) for frame in peer.sent] == [
        ("a", 1),
        ("a", 49),
        ("b", 49),
    ]
    live.answered(subs[0], answer(49))  # the same bytes again: nothing to send
    await asyncio.sleep(0.05)
    assert len(peer.sent) == 3
    await live.close()
