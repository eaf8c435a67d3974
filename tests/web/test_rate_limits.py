"""Rate limits: every call counts, items and frames included; a batch never passes the budget;
budgets kept in memory or shared through a real Redis."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count, make_container
from tests.helpers import bearer, create_app, grommet_item
from tests.redis_server import redis_server
from tests.websocket_support import AsgiSocket

BUDGET = 5
_callers = itertools.count()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module", params=["memory", "redis"])
async def limited(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Any]:
    storage = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    settings = {"rate_limit": f"{BUDGET}/minute", "rate_limit_storage_url": storage}
    app = create_app(make_container(database_url, **settings))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


@pytest.fixture
async def http(limited: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own caller (a fresh budget)."""
    credentials = bearer(sub=f"caller-{next(_callers)}")
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://limited", headers=credentials
    ) as client:
        yield client


async def test_each_call_takes_one_and_the_last_answer_is_429_with_retry_after(
    http: httpx.AsyncClient,
) -> None:
    answers = [await http.get("/grommets") for _ in range(BUDGET + 1)]
    assert [a.status_code for a in answers] == [200] * BUDGET + [429]
    assert answers[0].headers["ratelimit-policy"] == f'"default";q={BUDGET};w=60'
    remaining = [a.headers["ratelimit"].split(";")[1] for a in answers]
    assert remaining == ["r=4", "r=3", "r=2", "r=1", "r=0", "r=0"]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:carpool:problem:rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert (await http.get("/health")).status_code == 200, "public routes are not limited"
    metrics = (await http.get("/metrics")).text
    assert 'carpool_refusals_total{status="429",type="rate-limited"}' in metrics


async def test_every_batch_item_counts_and_a_batch_past_the_budget_runs_nothing(
    http: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    assert (await http.get("/grommets")).status_code == 200  # 4 left
    envelope = {"requests": [grommet_item(f"g{n}") for n in range(BUDGET)]}
    refused = await http.post("/batch", json=envelope)
    assert refused.status_code == 429, refused.text
    assert "retry-after" in refused.headers
    assert await count(admin_engine, "grommets") == 0, "nothing ran"

    accepted = await http.post("/batch", json={"requests": envelope["requests"][:3]})
    assert accepted.status_code == 200
    assert accepted.headers["ratelimit"].startswith('"default";r=1;')
    assert [item["status"] for item in accepted.json()["responses"]] == [201] * 3
    assert (await http.get("/grommets")).status_code == 200  # the last one
    assert (await http.post("/batch", json={"load": ["/grommets"]})).status_code == 429


async def test_every_frame_counts(limited: Any) -> None:
    socket = await AsgiSocket(limited, headers=bearer(sub=f"caller-{next(_callers)}")).open()
    statuses = []
    for n in range(BUDGET + 1):
        socket.send({"id": str(n), "path": "/grommets"})
        statuses.append((await socket.answer())["status"])
    socket.send({"id": "b", "batch": {"load": ["/grommets"]}})
    batch = await socket.answer()
    socket.leave()
    await socket.ended()
    assert statuses == [200] * BUDGET + [429]
    assert batch["status"] == 429


async def test_callers_without_a_token_are_limited_by_their_address(limited: Any) -> None:
    transport = httpx.ASGITransport(app=limited, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://anon") as anonymous:
        statuses = [(await anonymous.get("/grommets")).status_code for _ in range(BUDGET + 1)]
    other = httpx.ASGITransport(app=limited, client=("192.0.2.8", 40000))
    async with httpx.AsyncClient(transport=other, base_url="http://anon") as neighbour:
        assert (await neighbour.get("/grommets")).status_code == 401
    assert statuses == [401] * BUDGET + [429], "guessing tokens costs budget too"
