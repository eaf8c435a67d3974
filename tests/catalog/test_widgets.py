"""The widget routes, through the ASGI app, on real PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count
from tests.helpers import assert_problem, create_grommet, create_widget


async def test_create_answers_201_with_location_and_parts(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    m8 = await create_grommet(client, "M8")
    response = await client.post(
        "/widgets",
        json={
            "name": "hinge",
            "parts": [
                {"grommet_id": m8["id"], "quantity": 1},
                {"grommet_id": m6["id"], "quantity": 4},
            ],
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/widgets/{body['id']}"
    assert set(body) == {"id", "name", "parts", "created_at", "updated_at"}
    assert body["name"] == "hinge"
    assert sorted(body["parts"], key=lambda p: p["grommet_id"]) == [
        {"grommet_id": m6["id"], "quantity": 4},
        {"grommet_id": m8["id"], "quantity": 1},
    ]
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]
    assert await count(admin_engine, "widget_parts", f"widget_id = {body['id']}") == 2


async def test_get_answers_the_widget_with_parts_ordered_by_grommet(
    client: httpx.AsyncClient,
) -> None:
    m6 = await create_grommet(client, "M6")
    m8 = await create_grommet(client, "M8")
    created = await create_widget(
        client,
        "hinge",
        [{"grommet_id": m8["id"], "quantity": 1}, {"grommet_id": m6["id"], "quantity": 4}],
    )
    response = await client.get(f"/widgets/{created['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        **created,
        "parts": [
            {"grommet_id": m6["id"], "quantity": 4},
            {"grommet_id": m8["id"], "quantity": 1},
        ],
    }


async def test_widget_without_parts_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.post("/widgets", json={"name": "bare"})
    assert response.status_code == 201
    assert response.json()["parts"] == []
    fetched = await client.get(response.headers["location"])
    assert fetched.json()["parts"] == []


async def test_include_grommets_embeds_each_grommet_on_a_single_widget(
    client: httpx.AsyncClient,
) -> None:
    m6 = await create_grommet(client, "M6")
    created = await create_widget(client, "hinge", [{"grommet_id": m6["id"], "quantity": 4}])
    response = await client.get(f"/widgets/{created['id']}?include=grommets")
    assert response.status_code == 200
    assert response.json() == {**created, "parts": [{"grommet": m6, "quantity": 4}]}


async def test_include_grommets_on_the_list_costs_three_queries_not_n_plus_one(
    client: httpx.AsyncClient,
) -> None:
    gs = [await create_grommet(client, f"G{i}", diameter_mm=i + 1) for i in range(5)]
    for i in range(6):
        await create_widget(
            client,
            f"W{i}",
            [
                {"grommet_id": gs[i % 5]["id"], "quantity": i + 1},
                {"grommet_id": gs[(i + 1) % 5]["id"], "quantity": 1},
            ],
        )
    response = await client.get("/widgets?include=grommets")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [w["name"] for w in items] == [f"W{i}" for i in range(6)]
    by_id = {g["id"]: g for g in gs}
    for i, item in enumerate(items):
        expected = sorted(
            [(gs[i % 5]["id"], i + 1), (gs[(i + 1) % 5]["id"], 1)], key=lambda pair: pair[0]
        )
        assert item["parts"] == [{"grommet": by_id[gid], "quantity": q} for gid, q in expected]
    assert response.headers["server-timing"].endswith('desc="3 queries"')


async def test_unknown_include_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    for path in ("/widgets?include=gadgets", "/widgets/1?include=grommets,gadgets"):
        body = assert_problem(await client.get(path), 422, "validation")
        assert body["errors"] == [
            {"detail": "unknown include value(s): gadgets", "parameter": "include"}
        ]


async def test_unknown_grommet_in_parts_is_422_pointing_at_it_and_nothing_is_written(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    response = await client.post(
        "/widgets",
        json={
            "name": "hinge",
            "parts": [{"grommet_id": m6["id"], "quantity": 1}, {"grommet_id": 999, "quantity": 1}],
        },
    )
    body = assert_problem(response, 422, "validation")
    assert body["errors"] == [
        {"detail": "grommet 999 does not exist", "pointer": "/parts/1/grommet_id"}
    ]
    assert await count(admin_engine, "widgets") == 0
    assert await count(admin_engine, "widget_parts") == 0


async def test_same_grommet_twice_in_parts_is_422(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    parts = [{"grommet_id": m6["id"], "quantity": 1}, {"grommet_id": m6["id"], "quantity": 2}]
    body = assert_problem(
        await client.post("/widgets", json={"name": "hinge", "parts": parts}), 422, "validation"
    )
    assert body["errors"] == [
        {"detail": f"grommet {m6['id']} is listed more than once", "pointer": "/parts"}
    ]
    assert await count(admin_engine, "widgets") == 0
    created = await create_widget(client, "other", [])
    patch = await client.patch(f"/widgets/{created['id']}", json={"parts": parts})
    assert_problem(patch, 422, "validation")
    assert await count(admin_engine, "widget_parts") == 0


async def test_bad_part_values_are_422_pointing_at_each(client: httpx.AsyncClient) -> None:
    m6 = await create_grommet(client, "M6")
    parts = [
        {"grommet_id": m6["id"], "quantity": 0},
        {"grommet_id": 0, "quantity": 1},
        {"grommet_id": m6["id"]},
    ]
    body = assert_problem(
        await client.post("/widgets", json={"name": "x", "parts": parts}), 422, "validation"
    )
    pointers = [error["pointer"] for error in body["errors"]]
    assert pointers == ["/parts/0/quantity", "/parts/1/grommet_id", "/parts/2/quantity"]


async def test_duplicate_name_is_409_and_nothing_is_written(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    await create_widget(client, "hinge", [])
    response = await client.post(
        "/widgets", json={"name": "hinge", "parts": [{"grommet_id": m6["id"], "quantity": 1}]}
    )
    body = assert_problem(response, 409, "conflict")
    assert body["detail"] == 'a widget named "hinge" already exists'
    assert await count(admin_engine, "widgets") == 1
    assert await count(admin_engine, "widget_parts") == 0


async def test_rename_to_a_taken_name_is_409_and_changes_nothing(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    await create_widget(client, "hinge", [])
    other = await create_widget(client, "bracket", [{"grommet_id": m6["id"], "quantity": 2}])
    response = await client.patch(f"/widgets/{other['id']}", json={"name": "hinge", "parts": []})
    body = assert_problem(response, 409, "conflict")
    assert body["detail"] == 'a widget named "hinge" already exists'
    assert (await client.get(f"/widgets/{other['id']}")).json() == other
    assert await count(admin_engine, "widget_parts") == 1


async def test_patch_renames_and_bumps_updated_at_keeping_parts(
    client: httpx.AsyncClient,
) -> None:
    m6 = await create_grommet(client, "M6")
    created = await create_widget(client, "hinge", [{"grommet_id": m6["id"], "quantity": 4}])
    response = await client.patch(f"/widgets/{created['id']}", json={"name": "door hinge"})
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "door hinge"
    assert body["parts"] == created["parts"]
    assert body["created_at"] == created["created_at"]
    assert body["updated_at"] > created["updated_at"]
    assert (await client.get(f"/widgets/{created['id']}")).json() == body


async def test_patch_parts_replaces_the_whole_list(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    m8 = await create_grommet(client, "M8")
    created = await create_widget(client, "hinge", [{"grommet_id": m6["id"], "quantity": 4}])
    response = await client.patch(
        f"/widgets/{created['id']}", json={"parts": [{"grommet_id": m8["id"], "quantity": 7}]}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "hinge"
    assert response.json()["parts"] == [{"grommet_id": m8["id"], "quantity": 7}]
    assert await count(admin_engine, "widget_parts") == 1
    emptied = await client.patch(f"/widgets/{created['id']}", json={"parts": []})
    assert emptied.status_code == 200 and emptied.json()["parts"] == []
    assert await count(admin_engine, "widget_parts") == 0


async def test_patch_with_an_unknown_grommet_keeps_the_old_parts(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    created = await create_widget(client, "hinge", [{"grommet_id": m6["id"], "quantity": 4}])
    response = await client.patch(
        f"/widgets/{created['id']}",
        json={"name": "renamed", "parts": [{"grommet_id": 4242, "quantity": 1}]},
    )
    body = assert_problem(response, 422, "validation")
    assert body["errors"] == [
        {"detail": "grommet 4242 does not exist", "pointer": "/parts/0/grommet_id"}
    ]
    assert (await client.get(f"/widgets/{created['id']}")).json() == created
    assert await count(admin_engine, "widget_parts", f"grommet_id = {m6['id']}") == 1


async def test_empty_or_null_patch_is_422(client: httpx.AsyncClient) -> None:
    created = await create_widget(client, "hinge", [])
    cases = [
        ({}, {"detail": "give at least one field to change", "pointer": ""}),
        ({"name": None}, {"detail": "cannot be null", "pointer": "/name"}),
        ({"parts": None}, {"detail": "cannot be null", "pointer": "/parts"}),
    ]
    for body, error in cases:
        response = await client.patch(f"/widgets/{created['id']}", json=body)
        assert assert_problem(response, 422, "validation")["errors"] == [error], body
    assert (await client.get(f"/widgets/{created['id']}")).json() == created


async def test_delete_cascades_to_parts_and_frees_the_grommets(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    m6 = await create_grommet(client, "M6")
    created = await create_widget(client, "hinge", [{"grommet_id": m6["id"], "quantity": 4}])
    response = await client.delete(f"/widgets/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert await count(admin_engine, "widgets") == 0
    assert await count(admin_engine, "widget_parts") == 0
    assert await count(admin_engine, "grommets") == 1
    assert (await client.delete(f"/grommets/{m6['id']}")).status_code == 204


async def test_unknown_widget_is_404_on_every_route(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    for path in ("/widgets/12345", "/widgets/0", "/widgets/-3", "/widgets/99999999999999999999"):
        expected_detail = f"widget {path.rsplit('/', 1)[1]} does not exist"
        for response in (
            await client.get(path),
            await client.get(path + "?include=grommets"),
            await client.patch(path, json={"name": "x"}),
            await client.delete(path),
        ):
            body = assert_problem(response, 404, "not-found")
            assert body["detail"] == expected_detail
    assert await count(admin_engine, "widgets") == 0


async def test_delete_twice_is_204_then_404(client: httpx.AsyncClient) -> None:
    created = await create_widget(client, "hinge", [])
    assert (await client.delete(f"/widgets/{created['id']}")).status_code == 204
    assert_problem(await client.delete(f"/widgets/{created['id']}"), 404, "not-found")
    assert_problem(await client.get(f"/widgets/{created['id']}"), 404, "not-found")


async def test_created_widget_lists_parts_in_the_order_every_read_does(
    client: httpx.AsyncClient,
) -> None:
    for name in ("A", "B", "C"):
        await client.post("/grommets", json={"name": name, "material": "brass", "diameter_mm": 2})
    parts = [{"grommet_id": 3, "quantity": 1}, {"grommet_id": 1, "quantity": 2}]
    created = await client.post("/widgets", json={"name": "w", "parts": parts})
    assert created.status_code == 201
    fetched = await client.get(created.headers["location"])
    assert created.json()["parts"] == fetched.json()["parts"]
    assert [p["grommet_id"] for p in created.json()["parts"]] == [1, 3]
