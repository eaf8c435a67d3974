"""`GET /widgets/{id}/availability` against a real (fake) inventory service on 127.0.0.1."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from websockets.asyncio.client import connect

from carpool.data.engine import Database
from tests.conftest import make_container, wait_for_idle_pool
from tests.fake_inventory import FakeInventory, fake_inventory
from tests.helpers import (
    AUTH,
    assert_problem,
    create_app,
    create_grommet,
    create_widget,
    hinge,
    served,
)
from tests.uvicorn_in_process import serving

TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
async def inventory() -> AsyncIterator[FakeInventory]:
    async with fake_inventory() as fake:
        yield fake


@pytest.fixture(scope="module")
async def upstream_app(database_url: str, inventory: FakeInventory) -> AsyncIterator[Any]:
    container = make_container(
        database_url, inventory_url=inventory.url + "/", upstream_timeout_s=TIMEOUT_S
    )
    app = create_app(container)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


@pytest.fixture
async def http(upstream_app: Any, inventory: FakeInventory) -> AsyncIterator[httpx.AsyncClient]:
    """The app with an inventory service; its pool is idle after each test."""
    inventory.reset()
    transport = httpx.ASGITransport(app=upstream_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carpool.test", headers=AUTH
    ) as client:
        yield client
    engine: Database = upstream_app.ctx.container.database()
    assert await wait_for_idle_pool(engine) == 0, "a connection was leaked"


async def test_availability_answers_buildable_count_and_the_limiting_grommet(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await hinge(http, inventory)
    m6, m8 = sorted(part["grommet_id"] for part in made["parts"])
    response = await http.get(f"/widgets/{made['id']}/availability")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "widget_id": made["id"],
        "buildable": 2,
        "limited_by": m8,
        "parts": [
            {"grommet_id": m6, "quantity": 2, "available": 10, "enough_for": 5},
            {"grommet_id": m8, "quantity": 3, "available": 7, "enough_for": 2},
        ],
    }
    assert sorted(seen["path"] for seen in inventory.seen) == [f"/stock/{m6}", f"/stock/{m8}"]


async def test_availability_asks_about_every_grommet_at_once(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    grommets = [await create_grommet(http, f"G{i}") for i in range(5)]
    inventory.stock.update({g["id"]: 100 for g in grommets})
    parts = [{"grommet_id": g["id"], "quantity": 1} for g in grommets]
    made = await create_widget(http, "five", parts)
    inventory.delay_s = 0.1
    response = await http.get(f"/widgets/{made['id']}/availability")
    assert response.status_code == 200, response.text
    assert inventory.max_in_flight == 5


async def test_availability_passes_the_request_id_to_the_inventory(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await hinge(http, inventory)
    response = await http.get(
        f"/widgets/{made['id']}/availability", headers={"X-Request-ID": "order-4711"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "order-4711"
    assert [seen.get("X-Request-ID") for seen in inventory.seen] == ["order-4711"] * 2


async def test_slow_inventory_is_a_504_problem(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await hinge(http, inventory)
    inventory.mode = "slow"
    response = await http.get(f"/widgets/{made['id']}/availability")
    body = assert_problem(response, 504, "upstream-timeout")
    assert "did not answer in time" in body["detail"]


@pytest.mark.parametrize(
    ("mode", "detail"),
    [("error", "answered 500"), ("bad-json", "is not JSON"), ("wrong-shape", "is not")],
)
async def test_failing_inventory_is_a_502_problem(
    http: httpx.AsyncClient, inventory: FakeInventory, mode: str, detail: str
) -> None:
    made = await hinge(http, inventory)
    inventory.mode = mode
    response = await http.get(f"/widgets/{made['id']}/availability")
    body = assert_problem(response, 502, "upstream-failed")
    assert detail in body["detail"]


async def test_grommet_the_inventory_does_not_know_is_a_502_problem(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await hinge(http, inventory)
    inventory.stock.clear()
    response = await http.get(f"/widgets/{made['id']}/availability")
    assert_problem(response, 502, "upstream-failed")


async def test_unreachable_inventory_is_a_502_problem(database_url: str) -> None:
    # A port nothing listens on: connection refused.
    container = make_container(database_url, inventory_url="http://127.0.0.1:9")
    app = create_app(container)
    async with served(app, base_url="http://t", headers=AUTH) as client:
        made = await create_widget(
            client,
            "lonely",
            [{"grommet_id": (await create_grommet(client, "M3"))["id"], "quantity": 1}],
        )
        response = await client.get(f"/widgets/{made['id']}/availability")
    assert_problem(response, 502, "upstream-failed")


async def test_unknown_widget_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/widgets/424242/availability")
    assert_problem(response, 404, "not-found")


async def test_widget_without_parts_needs_nothing(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await create_widget(http, "nothing", [])
    response = await http.get(f"/widgets/{made['id']}/availability")
    assert response.json() == {
        "widget_id": made["id"],
        "buildable": None,
        "limited_by": None,
        "parts": [],
    }
    assert inventory.seen == []


async def test_without_inventory_url_availability_is_a_503_problem(
    client: httpx.AsyncClient,
) -> None:
    # The session app is configured without INVENTORY_URL.
    made = await create_widget(client, "hinge", [])
    response = await client.get(f"/widgets/{made['id']}/availability")
    body = assert_problem(response, 503, "unavailable")
    assert "INVENTORY_URL" in body["detail"]


async def test_availability_in_a_batch_answers_what_the_single_route_answers(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await hinge(http, inventory)
    path = f"/widgets/{made['id']}/availability"
    single = await http.get(path)
    response = await http.post("/batch", json={"load": [path, "/widgets/999/availability"]})
    assert response.status_code == 200
    answers = response.json()["responses"]
    assert [answer["status"] for answer in answers] == [200, 404]
    assert orjson.dumps(answers[0]["body"]) == single.content


async def test_inventory_failure_fails_only_its_batch_item(
    http: httpx.AsyncClient, inventory: FakeInventory
) -> None:
    made = await hinge(http, inventory)
    inventory.mode = "error"
    response = await http.post(
        "/batch", json={"load": [f"/widgets/{made['id']}/availability", f"/widgets/{made['id']}"]}
    )
    assert [answer["status"] for answer in response.json()["responses"]] == [502, 200]


async def test_availability_over_the_websocket(database_url: str, inventory: FakeInventory) -> None:
    inventory.reset()
    container = make_container(database_url, inventory_url=inventory.url)
    app = create_app(container)
    async with serving(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", headers=AUTH) as client:
            made = await hinge(client, inventory)
            single = await client.get(f"/widgets/{made['id']}/availability")
        async with connect(f"ws://{address}/ws", additional_headers=AUTH) as ws:
            frame = {"id": "a", "path": f"/widgets/{made['id']}/availability"}
            await ws.send(orjson.dumps(frame).decode())
            answer = orjson.loads(await ws.recv())
    assert answer["status"] == 200
    assert orjson.dumps(answer["body"]) == single.content


async def test_one_client_session_serves_the_worker_and_closes_at_shutdown(
    database_url: str, inventory: FakeInventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory.reset()
    made_sessions: list[aiohttp.ClientSession] = []
    original_init = aiohttp.ClientSession.__init__

    def spy(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        made_sessions.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", spy)
    app = create_app(make_container(database_url, inventory_url=inventory.url))
    async with served(app, base_url="http://t", headers=AUTH) as client:
        made = await hinge(client, inventory)
        path = f"/widgets/{made['id']}/availability"
        for _ in range(3):
            assert (await client.get(path)).status_code == 200
        batch = {"requests": [{"path": path}, {"path": path}]}
        response = await client.post("/batch", json=batch)
        assert [a["status"] for a in response.json()["responses"]] == [200, 200]
        assert len(made_sessions) == 1
        (session,) = made_sessions
        assert app.ctx.inventory.session is session
        assert not session.closed
    assert session.closed
    made_sessions.clear()
    del session
    gc.collect()  # an unclosed session would warn here, and warnings are errors
