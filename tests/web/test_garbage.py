"""A call leaves no reference cycles: what it made is freed by reference counting as it ends.

The worker raises the cyclic collector's threshold (`carpool.app.GC_YOUNG_THRESHOLD`) on this
promise. A cycle per call (Sanic's ASGI adapter and the request linked both ways, a unit of
work and its loaders) left every call for the collector to free: its passes over them took a
sixth of a worker's CPU under load, and a higher threshold would only have let garbage pile up.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from carpool.app import GC_YOUNG_THRESHOLD
from tests.helpers import create_grommet, create_widget
from tests.websocket_support import AsgiSocket

# Objects of the code under test: the app's own and its framework's (not the test client's).
_OURS = ("carpool.", "sanic.", "sanic_routing.", "asyncpg.")


def _drop_cancelled_timers() -> None:
    """Let go of the loop's cancelled timers now. The test's asyncio loop keeps them (and the
    context each holds, with the request Sanic set in it) until they would have fired, so a
    call's objects stay reachable for minutes; uvloop, as served, drops them when cancelled.
    """
    loop: Any = asyncio.get_running_loop()
    scheduled = getattr(loop, "_scheduled", None)
    if isinstance(scheduled, list):
        scheduled[:] = [timer for timer in scheduled if not timer.cancelled()]
        heapq.heapify(scheduled)
        loop._timer_cancelled_count = 0


@contextmanager
def cyclic_garbage() -> Iterator[Counter[str]]:
    """Count, by type, the app's objects that only the cyclic collector freed in the block."""
    found: Counter[str] = Counter()
    _drop_cancelled_timers()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        _drop_cancelled_timers()
        gc.collect()
        for thing in gc.garbage:
            kind = type(thing)
            name = f"{kind.__module__}.{kind.__qualname__}"
            if name.startswith(_OURS):
                found[name] += 1
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def _twice(call: Callable[[], Awaitable[Any]]) -> Counter[str]:
    await call()  # warm: first calls fill caches (routes, statements) that are meant to stay
    with cyclic_garbage() as found:
        for _ in range(5):
            await call()
    return found


async def test_single_calls_leave_no_cycles(client: httpx.AsyncClient) -> None:
    grommet = await create_grommet(client, "M6")
    widget = await create_widget(client, "hinge", [{"grommet_id": grommet["id"], "quantity": 2}])

    async def calls() -> None:
        assert (await client.get(f"/grommets/{grommet['id']}")).status_code == 200
        widget_path = f"/widgets/{widget['id']}?include=grommets"
        assert (await client.get(widget_path)).status_code == 200
        assert (await client.get("/grommets?limit=2")).status_code == 200
        patched = await client.patch(f"/grommets/{grommet['id']}", json={"diameter_mm": 7})
        assert patched.status_code == 200

    assert await _twice(calls) == Counter()


async def test_refused_and_failed_calls_leave_no_cycles(client: httpx.AsyncClient) -> None:
    async def calls() -> None:
        assert (await client.get("/grommets/999999")).status_code == 404
        assert (await client.post("/grommets", json={"name": 1})).status_code == 422
        assert (await client.get("/nowhere")).status_code == 404
        anonymous = await client.delete("/grommets/1", headers={"authorization": ""})
        assert anonymous.status_code == 401
        batch = await client.post("/batch", json={"load": ["/grommets/999999", "/batch"]})
        assert [item["status"] for item in batch.json()["responses"]] == [404, 400]

    assert await _twice(calls) == Counter()


async def test_batches_leave_no_cycles(client: httpx.AsyncClient) -> None:
    grommet = await create_grommet(client, "M6")
    paths = [f"/grommets/{grommet['id']}", "/grommets?limit=5", "/widgets?include=grommets"]

    async def calls() -> None:
        short = await client.post("/batch", json={"load": paths})
        assert short.status_code == 200
        full = await client.post(
            "/batch",
            json={
                "requests": [
                    {"id": "g", "path": f"/grommets/{grommet['id']}"},
                    {"method": "PATCH", "path": "/grommets/{{g/body/id}}", "body": {"name": "M7"}},
                ]
            },
        )
        assert full.status_code == 200
        assert [item["status"] for item in full.json()["responses"]] == [200, 200]

    assert await _twice(calls) == Counter()


async def test_frames_leave_no_cycles(app: Any, client: httpx.AsyncClient) -> None:
    grommet = await create_grommet(client, "M6")
    socket = await AsgiSocket(app).open()
    try:

        async def calls() -> None:
            socket.send({"id": "1", "path": f"/grommets/{grommet['id']}"})
            assert (await socket.answer())["status"] == 200
            socket.send({"id": "2", "batch": {"load": [f"/grommets/{grommet['id']}"]}})
            assert (await socket.answer())["status"] == 200

        assert await _twice(calls) == Counter()
    finally:
        socket.leave()
        await socket.ended()


async def test_a_started_worker_collects_its_young_generation_less_often(app: Any) -> None:
    # Made safe by the tests above: with no garbage per call, a rarer pass only walks the
    # objects of calls in flight (docs/performance.md: the collector took 15-20% at 700).
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > 700
    assert gc.get_freeze_count() > 0  # what startup made is out of the collector's reach
