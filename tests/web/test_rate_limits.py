"""Rate limits: every call counts, items and frames included; a batch never passes the budget;
budgets kept in memory or shared through a real Redis."""

from __future__ import annotations

import asyncio
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


# -- the shared storage away: RATE_LIMIT_ON_STORAGE_ERROR ------------------------------------


async def _every_way(app: Any, http: httpx.AsyncClient) -> dict[str, tuple[int, str | None]]:
    """The status (and Retry-After) of a single GET, a batch and a frame."""
    single = await http.get("/grommets")
    batch = await http.post("/batch", json={"load": ["/grommets", "/widgets"]})
    socket = await AsgiSocket(app).open()
    socket.send({"id": "f", "path": "/grommets"})
    frame = await socket.answer()
    socket.leave()
    await socket.ended()
    return {
        "single": (single.status_code, single.headers.get("retry-after")),
        "batch": (batch.status_code, batch.headers.get("retry-after")),
        "frame": (frame["status"], frame.get("headers", {}).get("retry-after")),
    }


def _storage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "carpool.rate_limits"]


@pytest.mark.parametrize("policy", ["allow", "refuse"])
@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_redis_away_answers_the_documented_policy_never_a_500(
    database_url: str, caplog: pytest.LogCaptureFixture, policy: str, fault: str
) -> None:
    import os
    import signal
    import time

    from tests.helpers import AUTH, served
    from tests.redis_server import redis_process

    caplog.set_level("WARNING", logger="carpool.rate_limits")
    with redis_process() as (url, redis):
        settings = {
            "rate_limit": "1000/minute",
            "rate_limit_storage_url": url,
            "rate_limit_on_storage_error": policy,
        }
        app = create_app(make_container(database_url, **settings))
        async with served(app, headers=AUTH) as http:
            assert (await http.get("/ready")).json()["status"] == "ready"
            assert set(await _every_way(app, http)) and not _storage_lines(caplog)
            if fault == "frozen":
                os.kill(redis.pid, signal.SIGSTOP)
            else:
                redis.kill()
                redis.wait()
            started = time.monotonic()
            answers = [await _every_way(app, http) for _ in range(5)]
            took = time.monotonic() - started
            ready = await http.get("/ready")
            if fault == "frozen":
                os.kill(redis.pid, signal.SIGCONT)
                await asyncio.sleep(1.1)  # the storage is tried again once a second
                assert (await http.get("/grommets")).status_code == 200
                assert (await http.get("/ready")).json()["status"] == "ready"
    expected = (200, None) if policy == "allow" else (503, "1")
    assert all(way == expected for answer in answers for way in answer.values()), answers
    # 15 calls; a frozen Redis costs its 0.5 s timeout about once a second, not per call.
    assert took < 15 * 0.5, took
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["unavailable"] == ["rate-limit storage"]
    lines = _storage_lines(caplog)
    assert len([line for line in lines if "unreachable" in line]) == 1, lines
    if fault == "frozen":
        assert any("reachable again" in line for line in lines), lines
