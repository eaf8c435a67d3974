"""The grommet routes, through the ASGI app, on real PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count
from tests.helpers import created

M6 = {"name": "M6", "material": "brass", "diameter_mm": 6}


async def create(client: httpx.AsyncClient, **fields: object) -> dict[str, Any]:
    return await created(client, "/grommets", {**M6, **fields})


async def test_create_answers_201_with_location_and_the_stored_grommet(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/grommets", json=M6)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/grommets/{body['id']}"
    assert body["name"] == "M6" and body["material"] == "brass" and body["diameter_mm"] == 6.0
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]
    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200 and fetched.json() == body


async def test_get_unknown_grommet_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/grommets/12345")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:carpool:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "grommet 12345 does not exist",
    }


async def test_ids_no_row_can_have_are_404_not_500(client: httpx.AsyncClient) -> None:
    for path in ("/grommets/0", "/grommets/-1", "/grommets/99999999999999999999999"):
        assert (await client.get(path)).status_code == 404
        assert (await client.delete(path)).status_code == 404
        assert (await client.patch(path, json={"name": "x"})).status_code == 404


async def test_duplicate_name_is_409_and_nothing_is_written(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await create(client)
    response = await client.post("/grommets", json={**M6, "material": "steel"})
    assert response.status_code == 409
    assert response.json()["detail"] == 'a grommet named "M6" already exists'
    assert await count(admin_engine, "grommets") == 1


async def test_patch_changes_only_given_fields_and_bumps_updated_at(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client)
    response = await client.patch(f"/grommets/{created['id']}", json={"material": "steel"})
    assert response.status_code == 200
    body = response.json()
    assert body["material"] == "steel" and body["name"] == "M6"
    assert body["updated_at"] > body["created_at"]


async def test_patch_to_a_taken_name_is_409(client: httpx.AsyncClient) -> None:
    await create(client)
    other = await create(client, name="M8")
    response = await client.patch(f"/grommets/{other['id']}", json={"name": "M6"})
    assert response.status_code == 409
    assert (await client.get(f"/grommets/{other['id']}")).json()["name"] == "M8"


async def test_empty_or_null_patch_is_422(client: httpx.AsyncClient) -> None:
    created = await create(client)
    for body in ({}, {"name": None}):
        response = await client.patch(f"/grommets/{created['id']}", json=body)
        assert response.status_code == 422, body


async def test_delete_answers_204_then_404(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    created = await create(client)
    response = await client.delete(f"/grommets/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert await count(admin_engine, "grommets") == 0
    assert (await client.delete(f"/grommets/{created['id']}")).status_code == 404


async def test_deleting_a_grommet_a_widget_uses_is_409(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    grommet = await create(client)
    widget = await client.post(
        "/widgets", json={"name": "hinge", "parts": [{"grommet_id": grommet["id"], "quantity": 2}]}
    )
    assert widget.status_code == 201
    response = await client.delete(f"/grommets/{grommet['id']}")
    assert response.status_code == 409
    assert "used by a widget" in response.json()["detail"]
    assert await count(admin_engine, "grommets") == 1


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    created = await create(client)
    for path in (f"/grommets/{created['id']}", "/grommets", "/widgets", "/health", "/batch"):
        get, head = await client.get(path), await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    assert (await client.head("/grommets/999")).status_code == 404
