"""BATCH_MAX_RESPONSE_BYTES: a batch's answers together stay under it; the rest answer 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count, make_container
from tests.helpers import AUTH, create_app, served

BUDGET = 4096
TOO_LARGE = "urn:carpool:problem:batch-too-large"


@pytest.fixture(scope="module")
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_container(database_url, batch_max_response_bytes=BUDGET))
    async with served(app, base_url="http://b", headers=AUTH) as c:
        yield c


async def fill(http: httpx.AsyncClient, n: int) -> None:
    items = [
        {
            "method": "POST",
            "path": "/grommets",
            "body": {"name": f"g{i}", "material": "brass", "diameter_mm": 6},
        }
        for i in range(n)
    ]
    assert (await http.post("/batch", json={"requests": items})).json()["committed"]


async def test_items_past_the_budget_are_not_answered_and_the_rest_fit(
    http: httpx.AsyncClient,
) -> None:
    await fill(http, 20)  # one page of 20 grommets is ~2.5 KB
    page = await http.get("/grommets?limit=500")
    assert BUDGET / 3 < len(page.content) < BUDGET
    envelope = {"atomic": False, "requests": [{"path": "/grommets?limit=500"}] * 5}
    answer = (await http.post("/batch", json=envelope)).json()
    statuses = [item["status"] for item in answer["responses"]]
    assert statuses.count(200) == 1 and statuses.count(413) == 4, statuses
    assert {item["body"]["type"] for item in answer["responses"][1:]} <= {TOO_LARGE}


async def test_an_atomic_batch_past_the_budget_rolls_back(
    http: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await fill(http, 20)
    grommet = {"name": "kept?", "material": "x", "diameter_mm": 1}
    envelope = {
        "requests": [
            {"method": "POST", "path": "/grommets", "body": grommet},
            {"path": "/grommets?limit=500"},
            {"path": "/grommets?limit=500"},
            {"method": "DELETE", "path": "/grommets/1"},
        ]
    }
    answer = (await http.post("/batch", json=envelope)).json()
    assert [item["status"] for item in answer["responses"]] == [201, 200, 413, 424]
    assert answer["committed"] is False
    assert await count(admin_engine, "grommets") == 20
