"""One call's inventory lookups: each grommet asked about once per call (a batch is one call),
at most UPSTREAM_MAX_CALLS of them, refused before any is sent past it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import make_container
from tests.fake_inventory import FakeInventory, fake_inventory
from tests.faults import tally
from tests.helpers import AUTH, assert_problem, create_app, create_grommet, create_widget

MAX_CALLS = 40


@pytest.fixture(scope="module")
async def inventory() -> AsyncIterator[FakeInventory]:
    async with fake_inventory() as fake:
        fake.default_stock = 100
        yield fake


@pytest.fixture(scope="module")
async def capped_app(database_url: str, inventory: FakeInventory) -> AsyncIterator[Any]:
    container = make_container(
        database_url, inventory_url=inventory.url, upstream_max_calls=MAX_CALLS
    )
    app = create_app(container)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


@pytest.fixture
async def http(capped_app: Any, inventory: FakeInventory) -> AsyncIterator[httpx.AsyncClient]:
    inventory.reset()
    inventory.default_stock = 100
    transport = httpx.ASGITransport(app=capped_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carpool.test", headers=AUTH
    ) as client:
        yield client


async def _widget_of(http: httpx.AsyncClient, name: str, grommets: list[int]) -> int:
    parts = [{"grommet_id": g, "quantity": 1} for g in grommets]
    made = await create_widget(http, name, parts)
    widget_id: int = made["id"]
    return widget_id


async def _grommets(http: httpx.AsyncClient, prefix: str, n: int) -> list[int]:
    return [(await create_grommet(http, f"{prefix}{i}"))["id"] for i in range(n)]


async def test_a_batch_asks_about_each_grommet_once_however_many_items_need_it(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    shared = await _grommets(http, "s", 30)
    first = await _widget_of(http, "first", shared)
    second = await _widget_of(http, "second", shared[:20])
    paths = [f"/widgets/{first}/availability"] * 3 + [f"/widgets/{second}/availability"] * 2
    answer = await http.post("/batch", json={"load": paths})
    assert answer.status_code == 200
    assert [item["status"] for item in answer.json()["responses"]] == [200] * 5
    assert len(inventory.seen) == 30, "30 grommets, each asked about once for five items"
    tally.record(upstream_calls_for_5_items_of_30_parts=len(inventory.seen))


async def test_a_call_past_upstream_max_calls_is_a_503_and_asks_nothing(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    many = await _grommets(http, "m", MAX_CALLS + 10)
    widget = await _widget_of(http, "many", many)
    inventory.seen.clear()
    refused = await http.get(f"/widgets/{widget}/availability")
    problem = assert_problem(refused, 503, "unavailable")
    assert "UPSTREAM_MAX_CALLS" in problem["detail"]
    assert inventory.seen == [], "refused before any lookup was sent"


async def test_a_batch_shares_one_budget_and_the_item_past_it_alone_is_refused(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    one = await _widget_of(http, "one", await _grommets(http, "a", 30))
    other = await _widget_of(http, "other", await _grommets(http, "b", 30))
    inventory.seen.clear()
    envelope = {
        "atomic": False,
        "requests": [
            {"path": f"/widgets/{one}/availability"},
            {"path": f"/widgets/{other}/availability"},
            {"path": f"/widgets/{one}/availability"},  # asked already: free
        ],
    }
    answer = await http.post("/batch", json=envelope)
    statuses = [item["status"] for item in answer.json()["responses"]]
    assert statuses == [200, 503, 200]
    assert len(inventory.seen) == 30
    tally.record(upstream_refused_past_cap=1)
