"""Catalog lookups go through the unit of work's loaders: constant queries, read-your-writes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import orjson
import pytest
from container import Container
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.grommets import grommets
from carpool.catalog.widgets import widgets
from carpool.data.unit_of_work import UnitOfWork
from carpool.errors import Conflict
from carpool.web.conditional import Preconditions
from tests.conftest import OpenUnit

GROMMETS = 5
INCLUDE_GROMMETS = frozenset({"grommets"})


async def seed(admin_engine: AsyncEngine, widgets: int) -> None:
    """Grommets 1..5 and widgets 1..`widgets`, each made of two different grommets."""
    async with admin_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO grommets (name, material, diameter_mm)"
                " SELECT 'g' || i, 'brass', i FROM generate_series(1, :n) i"
            ),
            {"n": GROMMETS},
        )
        await conn.execute(
            text("INSERT INTO widgets (name) SELECT 'w' || i FROM generate_series(1, :n) i"),
            {"n": widgets},
        )
        await conn.execute(
            text(
                "INSERT INTO widget_parts (widget_id, grommet_id, quantity)"
                " SELECT w, 1 + w % :g, 1 FROM generate_series(1, :n) w"
                " UNION ALL SELECT w, 1 + (w + 1) % :g, 2 FROM generate_series(1, :n) w"
            ),
            {"n": widgets, "g": GROMMETS},
        )


def queries_of(response: httpx.Response) -> int:
    found = re.search(r'desc="(\d+) queries"', response.headers["server-timing"])
    assert found is not None, response.headers["server-timing"]
    return int(found.group(1))


def expected_parts(widget_id: int) -> list[tuple[int, int]]:
    """(grommet id, quantity) of a seeded widget, ordered by grommet id."""
    return sorted([(1 + widget_id % GROMMETS, 1), (1 + (widget_id + 1) % GROMMETS, 2)])


def assert_embedded(item: dict[str, Any]) -> None:
    shown = [(p["grommet"]["id"], p["quantity"]) for p in item["parts"]]
    assert shown == expected_parts(item["id"])
    for part in item["parts"]:
        assert part["grommet"]["name"] == f"g{part['grommet']['id']}"


# -- over HTTP: what Server-Timing reports ------------------------------------------------------


async def test_widget_list_with_grommets_costs_the_same_queries_for_1_10_and_100_items(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=120)
    costs = set()
    for limit in (1, 10, 100):
        response = await client.get(f"/widgets?include=grommets&limit={limit}")
        assert response.status_code == 200
        items = response.json()["items"]
        assert len(items) == limit
        for item in items:
            assert_embedded(item)
        costs.add(queries_of(response))
    assert costs == {3}  # the page, every page's parts, every part's grommet


async def test_widget_list_without_include_costs_two_queries(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=50)
    response = await client.get("/widgets?limit=50")
    assert response.status_code == 200 and len(response.json()["items"]) == 50
    assert queries_of(response) == 2


async def test_single_reads_cost_one_query_per_kind_of_row(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=3)
    grommet = await client.get("/grommets/2")
    assert grommet.status_code == 200 and queries_of(grommet) == 1
    widget = await client.get("/widgets/3")
    assert widget.status_code == 200 and queries_of(widget) == 2
    embedded = await client.get("/widgets/3?include=grommets")
    assert embedded.status_code == 200 and queries_of(embedded) == 3
    assert_embedded(embedded.json())


async def test_a_missing_widget_is_404_after_one_query(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=3)
    response = await client.get("/widgets/999?include=grommets")
    assert response.status_code == 404
    assert response.json()["detail"] == "widget 999 does not exist"
    assert queries_of(response) == 1


async def test_with_coalescing_off_each_lookup_is_its_own_query_and_the_bytes_are_the_same(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, container: Container
) -> None:
    await seed(admin_engine, widgets=10)
    coalesced = await client.get("/widgets?include=grommets&limit=10")
    uncoalesced_units = providers.Factory(UnitOfWork, container.database, coalesce=False)
    with container.unit_of_work.override(uncoalesced_units):
        uncoalesced = await client.get("/widgets?include=grommets&limit=10")
    assert uncoalesced.status_code == 200
    assert uncoalesced.content == coalesced.content
    assert queries_of(coalesced) == 3
    assert queries_of(uncoalesced) == 1 + 10 + GROMMETS  # the page, each widget, each grommet


# -- one unit of work shared by concurrent readers (as batch items share it) -----------------


async def test_concurrent_widget_reads_on_one_unit_cost_two_queries(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=30)
    uow = (await open_uow()).work
    ids = list(range(1, 21))
    found = await asyncio.gather(*(widgets.one(uow, i) for i in ids))
    assert [w["id"] for w in found if w is not None] == ids
    assert uow.stats.queries == 2


async def test_concurrent_reads_with_grommets_on_one_unit_cost_three_queries(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=30)
    uow = (await open_uow()).work
    found = await asyncio.gather(
        *(widgets.one(uow, i, INCLUDE_GROMMETS) for i in range(1, 21)),
        *(grommets.one(uow, i) for i in range(1, GROMMETS + 1)),
    )
    for item in found[:20]:
        assert item is not None
        assert_embedded(item)
    assert uow.stats.queries == 3


async def test_duplicate_ids_load_once(open_uow: OpenUnit, admin_engine: AsyncEngine) -> None:
    await seed(admin_engine, widgets=5)
    uow = (await open_uow()).work
    found = await asyncio.gather(*(widgets.one(uow, 2) for _ in range(8)))
    assert all(w == found[0] for w in found) and found[0] is not None
    assert uow.stats.queries == 2
    assert await widgets.one(uow, 2) == found[0]
    assert uow.stats.queries == 2


async def test_missing_keys_are_none_for_exactly_those_keys(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=5)
    uow = (await open_uow()).work
    asked = [1, 404, 3, 5000, 5]
    found = await asyncio.gather(*(widgets.one(uow, i, INCLUDE_GROMMETS) for i in asked))
    assert [w["id"] if w else None for w in found] == [1, None, 3, None, 5]
    found_grommets = await asyncio.gather(*(grommets.one(uow, i) for i in (1, 99, 2)))
    assert [g["id"] if g else None for g in found_grommets] == [1, None, 2]
    assert uow.stats.queries == 4  # widgets, parts, grommets; then 99, the one not yet loaded


async def test_with_coalescing_off_concurrent_reads_each_take_their_own_queries(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=10)
    uow = (await open_uow(coalesce=False)).work
    found = await asyncio.gather(*(widgets.one(uow, i) for i in range(1, 11)))
    assert all(w is not None for w in found)
    assert uow.stats.queries == 20


# -- read-your-writes inside one unit of work ---------------------------------------------------


async def test_a_patched_grommet_is_what_later_reads_embed(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=3)
    uow = (await open_uow()).work
    before = await widgets.one(uow, 1, INCLUDE_GROMMETS)
    assert before is not None
    gid = before["parts"][0]["grommet"]["id"]
    row = await grommets.update(uow, gid, {"material": "steel"}, preconditions=Preconditions())
    after = await widgets.one(uow, 1, INCLUDE_GROMMETS)
    assert after is not None and after["parts"][0]["grommet"]["material"] == "steel"
    assert await grommets.one(uow, gid) == row


async def test_a_created_widget_is_found_by_a_read_that_missed_it_before(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=2)
    uow = (await open_uow()).work
    assert await widgets.one(uow, 3, INCLUDE_GROMMETS) is None
    parts = [{"grommet_id": 4, "quantity": 7}, {"grommet_id": 2, "quantity": 1}]
    row = await widgets.create(uow, {"name": "fresh", "parts": parts})
    assert row["id"] == 3
    created = await widgets.one(uow, 3, INCLUDE_GROMMETS)
    assert created is not None
    assert [(p["grommet"]["id"], p["quantity"]) for p in created["parts"]] == [(2, 1), (4, 7)]


async def test_a_deleted_widget_reads_as_missing(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=2)
    uow = (await open_uow()).work
    assert await widgets.one(uow, 2) is not None
    assert await widgets.delete(uow, 2, preconditions=Preconditions())
    assert await widgets.one(uow, 2) is None


async def test_what_a_write_primes_is_byte_for_byte_what_the_database_answers(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=2)
    uow = (await open_uow()).work
    await widgets.one(uow, 1, INCLUDE_GROMMETS)
    # Grommet 3 was loaded with widget 1, grommet 1 is primed by its update below.
    parts = [{"grommet_id": 3, "quantity": 3}, {"grommet_id": 1, "quantity": 9}]
    created = await widgets.create(uow, {"name": "new", "parts": parts})
    await widgets.update(uow, 1, {"name": "renamed"}, preconditions=Preconditions())
    await grommets.update(uow, 1, {"diameter_mm": 1.5}, preconditions=Preconditions())
    queries_before = uow.stats.queries
    primed = [await widgets.one(uow, i, INCLUDE_GROMMETS) for i in (1, created["id"])]
    assert uow.stats.queries == queries_before  # all of it came from what the writes primed
    uow.forget_loaded()
    fresh = [await widgets.one(uow, i, INCLUDE_GROMMETS) for i in (1, created["id"])]
    assert orjson.dumps(primed) == orjson.dumps(fresh)


async def test_undoing_a_savepoint_leaves_no_stale_row(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=2)
    uow = (await open_uow()).work
    original = await widgets.one(uow, 1, INCLUDE_GROMMETS)
    async with uow.savepoint() as point:
        await widgets.update(uow, 1, {"name": "doomed", "parts": []}, preconditions=Preconditions())
        await grommets.update(uow, 2, {"name": "doomed"}, preconditions=Preconditions())
        doomed = await widgets.one(uow, 1, INCLUDE_GROMMETS)
        assert doomed is not None and doomed["name"] == "doomed" and doomed["parts"] == []
        await point.undo()
    assert await widgets.one(uow, 1, INCLUDE_GROMMETS) == original
    restored = await grommets.one(uow, 2)
    assert restored is not None and restored["name"] == "g2"


async def test_a_grommet_deleted_between_two_reads_is_a_conflict_not_a_crash(
    open_uow: OpenUnit, admin_engine: AsyncEngine
) -> None:
    await seed(admin_engine, widgets=5)
    uow = (await open_uow()).work
    before = await widgets.one(uow, 1)
    assert before is not None
    gone = before["parts"][0]["grommet_id"]
    async with admin_engine.begin() as conn:
        await conn.execute(text("DELETE FROM widget_parts WHERE grommet_id = :g"), {"g": gone})
        await conn.execute(text("DELETE FROM grommets WHERE id = :g"), {"g": gone})
    with pytest.raises(Conflict, match=f"grommet {gone} is gone"):
        await widgets.one(uow, 1, INCLUDE_GROMMETS)
