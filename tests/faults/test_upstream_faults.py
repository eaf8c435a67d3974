"""The inventory service answering garbage, hanging, trickling or sending far too much."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from carpool.data.engine import Database
from tests.conftest import make_container, wait_for_idle_pool
from tests.fake_inventory import HUGE_BYTES, FakeInventory, fake_inventory
from tests.faults import tally
from tests.helpers import AUTH, assert_problem, create_app, hinge, served

TIMEOUT_S = 1.0
MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
async def inventory() -> AsyncIterator[FakeInventory]:
    async with fake_inventory() as fake:
        yield fake


@pytest.fixture(scope="module")
async def upstream_app(database_url: str, inventory: FakeInventory) -> AsyncIterator[Any]:
    container = make_container(
        database_url,
        inventory_url=inventory.url,
        upstream_timeout_s=TIMEOUT_S,
        upstream_max_bytes=MAX_BYTES,
    )
    app = create_app(container)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


@pytest.fixture
async def http(upstream_app: Any, inventory: FakeInventory) -> AsyncIterator[httpx.AsyncClient]:
    inventory.reset()
    transport = httpx.ASGITransport(app=upstream_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carpool.test", headers=AUTH
    ) as client:
        yield client
    inventory.mode = "ok"
    engine: Database = upstream_app.ctx.container.database()
    assert await wait_for_idle_pool(engine) == 0, "a connection was leaked"


async def availability(http: httpx.AsyncClient, inventory: FakeInventory, mode: str) -> Any:
    made = await hinge(http, inventory)
    inventory.mode = mode
    started = time.perf_counter()
    response = await http.get(f"/widgets/{made['id']}/availability")
    return response, time.perf_counter() - started


async def test_an_oversize_answer_is_a_502_read_no_further_than_the_cap(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    response, _ = await availability(http, inventory, "huge")
    body = assert_problem(response, 502, "upstream-failed")
    assert f"{MAX_BYTES} bytes" in body["detail"]
    # What the socket buffers hold besides, and no more: far from the 64 MiB on offer.
    assert inventory.sent < HUGE_BYTES // 8, inventory.sent
    tally.record(upstream_oversize_502=1)


async def test_an_oversize_content_length_is_a_502_before_reading(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    response, elapsed = await availability(http, inventory, "huge-declared")
    assert_problem(response, 502, "upstream-failed")
    assert elapsed < TIMEOUT_S, "refused on the declared length, not after waiting"
    tally.record(upstream_oversize_502=1)


async def test_a_trickling_answer_is_a_504_within_the_upstream_timeout(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    response, elapsed = await availability(http, inventory, "trickle")
    assert_problem(response, 504, "upstream-timeout")
    assert elapsed < TIMEOUT_S * 4
    tally.record(upstream_trickle_504=1)


async def test_a_hanging_upstream_is_a_504(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    response, _ = await availability(http, inventory, "slow")
    assert_problem(response, 504, "upstream-timeout")
    tally.record(upstream_hang_504=1)


@pytest.mark.parametrize("mode", ["bad-json", "wrong-shape", "error"])
async def test_garbage_from_upstream_is_a_502(
    http: httpx.AsyncClient, inventory: FakeInventory, mode: str
) -> None:
    response, _ = await availability(http, inventory, mode)
    assert_problem(response, 502, "upstream-failed")
    tally.record(upstream_garbage_502=1)


async def test_twenty_availability_calls_on_one_connection_answer_200_or_503_busy(
    database_url: str, inventory: FakeInventory, http: httpx.AsyncClient
) -> None:
    """The issue's reproduction: one connection, a slow upstream, twenty callers."""
    made = await hinge(http, inventory)
    inventory.delay_s = 0.6
    container = make_container(
        database_url,
        inventory_url=inventory.url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_s=0.3,
    )
    app = create_app(container)
    async with served(app, headers=AUTH) as tight:
        answers = await asyncio.gather(
            *(tight.get(f"/widgets/{made['id']}/availability") for _ in range(20))
        )
        engine: Database = app.ctx.container.database()
        assert await wait_for_idle_pool(engine) == 0
    statuses = Counter(answer.status_code for answer in answers)
    tally.record(pool_exhausted_calls=20, pool_exhausted_503=statuses[503])
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] and statuses[200]
    busy = next(answer for answer in answers if answer.status_code == 503)
    assert busy.json()["type"] == "urn:carpool:problem:busy"
    assert busy.headers["retry-after"] == "1"
