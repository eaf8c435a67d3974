"""A socket's unsent bytes have a budget: updates that do not fit end their subscription, and a
peer that stops reading ends the socket."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from carpool.compose.dispatch import SubResponse
from carpool.compose.live import Subscription
from carpool.compose.multiplex import AsgiWebSocket, Multiplexer, SocketClosed
from carpool.compose.outbound import SendBudget
from carpool.compose.subscriptions import LiveSocket
from tests.compose.test_live_socket import SlowPeer


def page(size: int, version: int = 1) -> SubResponse:
    return SubResponse(200, {}, orjson.dumps({"v": version, "pad": "x" * size}), "application/json")


def big_answers(socket: AsgiWebSocket, budget: SendBudget, *, max_in_flight: int) -> Multiplexer:
    """A multiplexer on `socket` that answers every frame with 10 kB, far past `budget`."""

    async def big_answer(payload: Any) -> bytes:
        return orjson.dumps({"pad": "x" * 10_000})

    return Multiplexer(
        socket,
        big_answer,
        max_in_flight=max_in_flight,
        max_frame_bytes=1 << 20,
        grace_s=1.0,
        budget=budget,
    )


class _Hub:
    """What a LiveSocket asks of its hub when a subscription ends."""

    def __init__(self) -> None:
        self.released: list[str] = []

    def release(self, sub: Subscription) -> None:
        self.released.append(sub.id)


async def test_an_update_past_the_budget_ends_its_subscription_with_a_slow_reader_update() -> None:
    peer, hub, budget = SlowPeer(), _Hub(), SendBudget(10_000)
    socket = AsgiWebSocket(peer.receive, peer.send)
    live = LiveSocket(hub, None, socket, max_subscriptions=10, budget=budget)  # type: ignore[arg-type]
    subs = {name: Subscription(name, "/x", None, live) for name in "abc"}  # type: ignore[arg-type]
    for sub in subs.values():
        live._subs[sub.id] = sub
    live.answered(subs["a"], page(6_000))  # the first always fits: it is on its way
    await asyncio.wait_for(peer.waiting.wait(), 5)
    live.answered(subs["b"], page(3_000))  # fits beside it
    live.answered(subs["c"], page(6_000))  # does not
    assert hub.released == ["c"]
    assert budget.pending <= budget.limit + 6_500
    peer.gate.set()
    for _ in range(200):
        if len(peer.sent) == 3:
            break
        await asyncio.sleep(0.01)
    by_id = {frame["id"]: frame for frame in peer.sent}
    assert by_id["a"]["status"] == by_id["b"]["status"] == 200
    assert by_id["c"]["status"] == 503 and by_id["c"]["ended"] is True
    assert by_id["c"]["body"]["type"] == "urn:carpool:problem:slow-reader"
    assert budget.pending == 0, "every sent byte is given back"
    await live.close()


async def test_a_peer_that_stops_reading_ends_the_socket_past_the_send_timeout() -> None:
    peer = SlowPeer()  # never reads: its sends never complete
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    socket = AsgiWebSocket(incoming.get, peer.send)
    socket.send_timeout_s = 0.3
    budget = SendBudget(1_000)
    multiplexer = big_answers(socket, budget, max_in_flight=4)
    serving = asyncio.create_task(multiplexer.serve())
    for n in range(3):
        incoming.put_nowait({"type": "websocket.receive", "text": f'{{"id":"{n}"}}'})
    async with asyncio.timeout(10):
        await serving  # ended by the stalled send, not by the peer
    assert socket.stalled and socket.close_code == 1013
    assert budget.pending == 0
    try:
        await socket.send_text(b"{}")
    except SocketClosed:
        pass
    else:
        raise AssertionError("a stalled socket sends nothing more")


async def test_the_socket_stops_reading_frames_while_its_unsent_bytes_are_past_the_budget() -> None:
    peer = SlowPeer()
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        message = await incoming.get()
        read += 1
        return message

    socket = AsgiWebSocket(receive, peer.send)
    budget = SendBudget(1_000)
    multiplexer = big_answers(socket, budget, max_in_flight=16)
    serving = asyncio.create_task(multiplexer.serve())
    incoming.put_nowait({"type": "websocket.receive", "text": '{"id":"0"}'})
    await asyncio.wait_for(peer.waiting.wait(), 5)  # its answer is on its way, unread
    for n in range(1, 10):
        incoming.put_nowait({"type": "websocket.receive", "text": f'{{"id":"{n}"}}'})
    await asyncio.sleep(0.2)
    try:
        assert read == 2, "over budget, the socket reads no more frames (but one read ahead)"
    finally:
        peer.gate.set()
    for _ in range(300):
        if len(peer.sent) == 10:
            break
        await asyncio.sleep(0.01)
    assert len(peer.sent) == 10, "all answered once the peer reads"
    incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(serving, 5)


async def test_subscriptions_sharing_one_answer_count_its_bytes_once() -> None:
    peer, hub, budget = SlowPeer(), _Hub(), SendBudget(10_000)
    socket = AsgiWebSocket(peer.receive, peer.send)
    live = LiveSocket(hub, None, socket, max_subscriptions=10, budget=budget)  # type: ignore[arg-type]
    subs = [Subscription(name, "/x", None, live) for name in "abcd"]  # type: ignore[arg-type]
    shared = page(6_000)  # one run's answer, handed to four identical subscriptions
    for sub in subs:
        live._subs[sub.id] = sub
        live.answered(sub, shared)
    assert hub.released == [], "one body, held once: all four fit"
    assert budget.pending < 6_000 + 4 * 300
    peer.gate.set()
    for _ in range(200):
        if len(peer.sent) == 4:
            break
        await asyncio.sleep(0.01)
    assert [frame["status"] for frame in peer.sent] == [200] * 4
    assert budget.pending == 0
    await live.close()
