"""Batch items share their unit of work's loaders: few queries, and they read their writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.grommets import grommets
from carpool.catalog.widgets import widgets
from carpool.web.conditional import Preconditions
from carpool.web.endpoints import PUBLIC, Doc, endpoint
from carpool.web.responses import problem_response
from tests.catalog.test_coalescing import INCLUDE_GROMMETS, assert_embedded, queries_of, seed
from tests.conftest import make_container, wait_for_idle_pool
from tests.helpers import AUTH, create_app, served


async def batch(client: httpx.AsyncClient, envelope: Any) -> tuple[httpx.Response, dict[str, Any]]:
    response = await client.post("/batch", json=envelope)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return response, answer


def by_id(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in answer["responses"]}


# -- query counts -----------------------------------------------------------------------------


async def test_a_batch_of_20_distinct_widget_reads_takes_two_queries(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=25)
    paths = [f"/widgets/{i}" for i in range(1, 21)]
    response, answer = await batch(client, {"load": paths})
    assert [r["status"] for r in answer["responses"]] == [200] * 20
    assert queries_of(response) == 2  # every widget, then every widget's parts
    for path, item in zip(paths, answer["responses"], strict=True):
        assert item["body"] == (await client.get(path)).json()


@pytest.mark.parametrize("size", [20, 50])
async def test_a_batch_of_widget_reads_with_grommets_takes_three_queries_whatever_its_size(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, size: int
) -> None:
    await seed(admin_engine, widgets=size)
    response, answer = await batch(
        client, {"load": [f"/widgets/{i}?include=grommets" for i in range(1, size + 1)]}
    )
    for item in answer["responses"]:
        assert item["status"] == 200
        assert_embedded(item["body"])
    assert queries_of(response) == 3


async def test_duplicate_ids_in_a_batch_load_once(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=5)
    requests = [
        {"id": f"r{n}", "path": f"/widgets/{1 + n % 3}?include=grommets"} for n in range(12)
    ]
    response, answer = await batch(client, {"requests": requests})
    bodies = [r["body"] for r in answer["responses"]]
    assert [b["id"] for b in bodies] == [1 + n % 3 for n in range(12)]
    assert all(bodies[n] == bodies[n % 3] for n in range(12))
    assert queries_of(response) == 3


async def test_missing_keys_are_404_only_for_the_items_that_ask_for_them(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=3)
    paths = ["/widgets/1", "/widgets/999", "/grommets/2", "/grommets/777", "/widgets/3"]
    response, answer = await batch(client, {"load": paths})
    assert [r["status"] for r in answer["responses"]] == [200, 404, 200, 404, 200]
    for path, item in zip(paths, answer["responses"], strict=True):
        assert item["body"] == (await client.get(path)).json()
    assert answer["committed"] is True
    assert queries_of(response) == 3  # widgets and grommets together, then parts


# -- read-your-writes -------------------------------------------------------------------------


@pytest.mark.parametrize("atomic", [True, False])
async def test_reads_after_patches_in_a_batch_see_the_patched_state(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, atomic: bool
) -> None:
    await seed(admin_engine, widgets=2)  # widget 1 is made of grommets 2 and 3
    new_parts = [{"grommet_id": 4, "quantity": 1}, {"grommet_id": 2, "quantity": 5}]
    envelope = {
        "atomic": atomic,
        "requests": [
            {"id": "before", "path": "/widgets/1?include=grommets"},
            {"id": "g", "method": "PATCH", "path": "/grommets/2", "body": {"material": "steel"}},
            {
                "id": "w",
                "method": "PATCH",
                "path": "/widgets/1",
                "body": {"name": "renamed", "parts": new_parts},
            },
            {"id": "after", "path": "/widgets/1?include=grommets"},
            {"id": "grommet", "path": "/grommets/2"},
        ],
    }
    _, answer = await batch(client, envelope)
    items = by_id(answer)
    assert answer["committed"] is True
    assert [p["grommet"]["material"] for p in items["before"]["body"]["parts"]] == ["brass"] * 2
    after = items["after"]["body"]
    assert after["name"] == "renamed"
    shown = [(p["grommet"]["id"], p["grommet"]["material"], p["quantity"]) for p in after["parts"]]
    assert shown == [(2, "steel", 5), (4, "brass", 1)]
    assert items["grommet"]["body"] == items["g"]["body"]
    assert after == (await client.get("/widgets/1?include=grommets")).json()
    assert items["w"]["body"] == (await client.get("/widgets/1")).json()


@pytest.mark.parametrize("atomic", [True, False])
async def test_a_widget_created_in_a_batch_is_read_back_with_its_grommets(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, atomic: bool
) -> None:
    await seed(admin_engine, widgets=2)
    envelope = {
        "atomic": atomic,
        "requests": [
            {"id": "warm", "path": "/widgets/1?include=grommets"},
            {
                "id": "g",
                "method": "POST",
                "path": "/grommets",
                "body": {"name": "M6", "material": "nylon", "diameter_mm": 6},
            },
            {
                "id": "w",
                "method": "POST",
                "path": "/widgets",
                "body": {
                    "name": "hinge",
                    "parts": [
                        {"grommet_id": "{{g/body/id}}", "quantity": 4},
                        {"grommet_id": 2, "quantity": 1},
                    ],
                },
            },
            {"id": "read", "path": "/widgets/{{w/body/id}}?include=grommets"},
        ],
    }
    _, answer = await batch(client, envelope)
    items = by_id(answer)
    assert answer["committed"] is True
    read = items["read"]["body"]
    assert [(p["grommet"]["name"], p["quantity"]) for p in read["parts"]] == [("g2", 1), ("M6", 4)]
    assert read == (await client.get(f"/widgets/{read['id']}?include=grommets")).json()


async def test_a_key_that_missed_before_a_write_is_found_after_it(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=2)
    envelope = {
        "atomic": False,  # the first read's 404 would stop an atomic batch
        "requests": [
            {"id": "miss", "path": "/widgets/3?include=grommets"},
            {"id": "w", "method": "POST", "path": "/widgets", "body": {"name": "third"}},
            {"id": "hit", "path": "/widgets/3?include=grommets"},
            {"id": "d", "method": "DELETE", "path": "/widgets/2"},
            {"id": "gone", "path": "/widgets/2"},
        ],
    }
    _, answer = await batch(client, envelope)
    statuses = {item_id: r["status"] for item_id, r in by_id(answer).items()}
    assert statuses == {"miss": 404, "w": 201, "hit": 200, "d": 204, "gone": 404}
    assert by_id(answer)["hit"]["body"] == by_id(answer)["w"]["body"]


async def test_a_failed_patch_in_a_non_atomic_batch_leaves_reads_unchanged(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=1)
    envelope = {
        "atomic": False,
        "requests": [
            {"id": "before", "path": "/grommets/1"},
            {"id": "taken", "method": "PATCH", "path": "/grommets/1", "body": {"name": "g2"}},
            {"id": "after", "path": "/grommets/1"},
        ],
    }
    _, answer = await batch(client, envelope)
    items = by_id(answer)
    assert items["taken"]["status"] == 409
    assert items["after"]["body"] == items["before"]["body"]


def _doomed_routes() -> Blueprint:
    """A write that reads itself back through the loaders (caching it), then fails."""
    blueprint = Blueprint("doomed", url_prefix="/_doomed")

    @endpoint(
        blueprint,
        "/grommets/<grommet_id:int>",
        methods=("POST",),
        scope=PUBLIC,
        doc=Doc("doomed", "Test probe", "probe"),
    )
    async def rename_read_then_fail(request: Request, grommet_id: int) -> HTTPResponse:
        uow = request.ctx.uow
        await grommets.update(uow, grommet_id, {"name": "doomed"}, preconditions=Preconditions())
        assert (await widgets.one(uow, 1, INCLUDE_GROMMETS)) is not None
        return problem_response(409, "the item fails after its write")

    return blueprint


async def test_a_failed_non_atomic_items_savepoint_leaves_no_stale_cache(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=1)  # widget 1 is made of grommets 2 and 3
    container = make_container(database_url)
    app = create_app(container)
    app.blueprint(_doomed_routes())
    envelope = {
        "atomic": False,
        "requests": [
            {"id": "before", "path": "/widgets/1?include=grommets"},
            {"id": "doomed", "method": "POST", "path": "/_doomed/grommets/2"},
            {"id": "after", "path": "/widgets/1?include=grommets"},
            {"id": "grommet", "path": "/grommets/2"},
        ],
    }
    async with served(app, base_url="http://t", headers=AUTH) as client:
        _, answer = await batch(client, envelope)
        assert await wait_for_idle_pool(container.database()) == 0
    items = by_id(answer)
    assert items["doomed"]["status"] == 409
    assert answer["committed"] is True
    assert items["after"]["body"] == items["before"]["body"]
    assert items["grommet"]["body"]["name"] == "g2"
