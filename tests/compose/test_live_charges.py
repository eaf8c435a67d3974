"""Every subscription is a call: its first answer and every re-run pushed to it are charged to
its subscriber, and identical subscriptions share one run."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.compose.test_live import update
from tests.conftest import make_container
from tests.helpers import bearer, create_app, grommet_body
from tests.websocket_support import AsgiSocket

BUDGET = 5
_callers = itertools.count()


@pytest.fixture(scope="module")
async def limited(database_url: str) -> AsyncIterator[Any]:
    app = create_app(make_container(database_url, rate_limit=f"{BUDGET}/minute"))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


def caller() -> dict[str, str]:
    """The credentials of a new caller (a fresh budget)."""
    return bearer(sub=f"subscriber-{next(_callers)}")


async def as_new_caller(app: Any, method: str, path: str, body: Any) -> httpx.Response:
    """`method path` with `body`, called by a new caller (whose budget is not the test's)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://limited", headers=caller()
    ) as client:
        return await client.request(method, path, json=body)


async def opened(app: Any, headers: dict[str, str]) -> AsgiSocket:
    return await AsgiSocket(app, headers=headers).open()


async def closed(ws: AsgiSocket) -> None:
    ws.leave()
    await ws.ended()


async def test_a_subscribe_costs_one_call_and_past_the_budget_ends_with_429_and_retry_after(
    limited: Any,
) -> None:
    ws = await opened(limited, caller())
    try:
        for n in range(BUDGET):
            ws.send({"type": "subscribe", "id": f"s{n}", "path": "/grommets"})
            assert (await update(ws))["status"] == 200
            ws.send({"type": "unsubscribe", "id": f"s{n}"})
            assert (await update(ws))["status"] == 204
        ws.send({"type": "subscribe", "id": "over", "path": "/grommets"})
        refused = await update(ws)
    finally:
        await closed(ws)
    assert refused["status"] == 429 and refused["ended"] is True
    assert refused["body"]["type"] == "urn:carpool:problem:rate-limited"
    assert 1 <= int(refused["headers"]["retry-after"]) <= 60


async def test_each_re_run_pushed_is_charged_to_the_subscriber_until_a_429_ends_it(
    limited: Any,
) -> None:
    created = await as_new_caller(limited, "POST", "/grommets", grommet_body("charged"))
    path = f"/grommets/{created.json()['id']}"
    ws = await opened(limited, caller())
    try:
        ws.send({"type": "subscribe", "id": "g", "path": path})
        assert (await update(ws))["status"] == 200  # 1 of 5
        pushed: list[dict[str, Any]] = []
        for n in range(BUDGET):
            patched = await as_new_caller(limited, "PATCH", path, {"diameter_mm": 10 + n})
            assert patched.status_code == 200
            pushed.append(await update(ws))
            if pushed[-1].get("ended"):
                break
    finally:
        await closed(ws)
    statuses = [frame["status"] for frame in pushed]
    # Every run is charged, pushed or not: on a loaded machine the creation's own change
    # notice can arrive while the first run is under way, and the run it causes (the same
    # answer, so nothing pushed) takes one call of the budget too.
    assert statuses in ([200] * (BUDGET - 1) + [429], [200] * (BUDGET - 2) + [429])
    assert 1 <= int(pushed[-1]["headers"]["retry-after"]) <= 60


async def test_a_batch_frame_past_the_budget_answers_429_with_retry_after(limited: Any) -> None:
    ws = await opened(limited, caller())
    try:
        ws.send({"id": "b", "batch": {"load": ["/grommets"] * (BUDGET + 1)}})
        refused = await ws.answer()
        ws.send({"id": "ok", "batch": {"load": ["/grommets"] * 2}})
        accepted = await ws.answer()
    finally:
        await closed(ws)
    assert refused["status"] == 429
    assert 1 <= int(refused["headers"]["retry-after"]) <= 60
    assert accepted["status"] == 200
    assert accepted["headers"]["ratelimit"].startswith('"default";r=3;')


async def test_identical_subscriptions_of_one_caller_share_one_run_per_change(
    app: Any, client: httpx.AsyncClient
) -> None:
    created = await client.post("/grommets", json=grommet_body("shared"))
    path = f"/grommets/{created.json()['id']}"
    ws = await AsgiSocket(app).open()
    try:
        for n in range(10):
            ws.send({"type": "subscribe", "id": f"s{n}", "path": path})
            await update(ws)
        stats = app.ctx.live.stats
        runs = stats.runs
        await client.patch(path, json={"diameter_mm": 9})
        pushed = [await update(ws) for _ in range(10)]
    finally:
        await closed(ws)
    assert sorted(frame["id"] for frame in pushed) == sorted(f"s{n}" for n in range(10))
    assert {frame["body"]["diameter_mm"] for frame in pushed} == {9.0}
    assert stats.runs - runs == 1, "one run for ten identical subscriptions"


@pytest.fixture(scope="module")
async def shared_worker(database_url: str) -> AsyncIterator[Any]:
    settings = {
        "live_max_subscriptions": 30,
        "ws_max_subscriptions": 10,
        "auth_anonymous_scopes": "catalog:read",
    }
    app = create_app(make_container(database_url, **settings))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


async def test_one_address_without_a_token_cannot_take_every_subscription_of_the_worker(
    shared_worker: Any,
) -> None:
    # A tenth of 30, but at least a socket's 10: one address may hold 10 however many sockets.
    sockets = [await opened(shared_worker, {}), await opened(shared_worker, {})]
    member = await opened(shared_worker, caller())
    try:
        statuses = []
        for n in range(12):
            ws = sockets[n % 2]
            ws.send({"type": "subscribe", "id": f"s{n}", "path": "/grommets"})
            statuses.append((await update(ws))["status"])
        member.send({"type": "subscribe", "id": "m", "path": "/grommets"})
        theirs = await update(member)
    finally:
        await closed(sockets[0])
        await closed(sockets[1])
        await closed(member)
    assert statuses == [200] * 10 + [429, 429]
    assert theirs["status"] == 200, "an authenticated caller still finds room"
