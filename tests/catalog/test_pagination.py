"""Keyset pagination of /grommets and /widgets: every row once, cursors and limits checked."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

RESOURCES = ("/grommets", "/widgets")


async def insert_rows(admin_engine: AsyncEngine, n: int) -> None:
    """`n` grommets and `n` widgets (widget i uses grommet i), straight into the database."""
    async with admin_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO grommets (name, material, diameter_mm)"
                " SELECT 'g' || i, 'steel', i FROM generate_series(1, :n) AS i"
            ),
            {"n": n},
        )
        await conn.execute(
            text("INSERT INTO widgets (name) SELECT 'w' || i FROM generate_series(1, :n) AS i"),
            {"n": n},
        )
        await conn.execute(
            text(
                "INSERT INTO widget_parts (widget_id, grommet_id, quantity)"
                " SELECT i, i, 1 FROM generate_series(1, :n) AS i"
            ),
            {"n": n},
        )


async def walk(
    client: httpx.AsyncClient, path: str, limit: int | None
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every item of every page, and the size of each page."""
    items: list[dict[str, Any]] = []
    sizes: list[int] = []
    params: dict[str, Any] = {} if limit is None else {"limit": limit}
    while True:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next"}
        items += page["items"]
        sizes.append(len(page["items"]))
        assert len(sizes) <= 2000, "pagination does not end"
        if page["next"] is None:
            return items, sizes
        params = {**params, "cursor": page["next"]}


def pages(total: int, limit: int) -> list[int]:
    """The page sizes a walk must see: full pages, then the rest (never an empty last page)."""
    full, rest = divmod(total, limit)
    return [limit] * full + ([rest] if rest else []) or [0]


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("limit", [1, 2, 3, 12, 13, 14, 500])
async def test_walk_sees_every_row_exactly_once_in_id_order(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, path: str, limit: int
) -> None:
    await insert_rows(admin_engine, 13)
    items, sizes = await walk(client, path, limit)
    assert [item["id"] for item in items] == list(range(1, 14))
    assert sizes == pages(13, limit)


@pytest.mark.parametrize("path", RESOURCES)
async def test_default_and_maximum_limits_walk_a_large_table(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, path: str
) -> None:
    await insert_rows(admin_engine, 1001)
    items, sizes = await walk(client, path, None)
    assert [item["id"] for item in items] == list(range(1, 1002))
    assert sizes == [50] * 20 + [1]
    items, sizes = await walk(client, path, 500)
    assert [item["id"] for item in items] == list(range(1, 1002))
    assert sizes == [500, 500, 1]


async def test_widget_pages_carry_their_parts(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await insert_rows(admin_engine, 4)
    items, _ = await walk(client, "/widgets", 3)
    assert [item["parts"] for item in items] == [
        [{"grommet_id": i, "quantity": 1}] for i in range(1, 5)
    ]
    response = await client.get("/widgets", params={"limit": 2, "include": "grommets"})
    assert [item["parts"][0]["grommet"]["name"] for item in response.json()["items"]] == [
        "g1",
        "g2",
    ]


@pytest.mark.parametrize("path", RESOURCES)
async def test_rows_deleted_between_pages_neither_repeat_nor_hide_others(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, path: str
) -> None:
    await insert_rows(admin_engine, 10)
    first = (await client.get(path, params={"limit": 3})).json()
    assert [item["id"] for item in first["items"]] == [1, 2, 3]
    # Delete the row the cursor points after, and the next one the walk would have seen.
    async with admin_engine.begin() as conn:
        await conn.execute(text("DELETE FROM widgets WHERE id IN (3, 4)"))
        await conn.execute(text("DELETE FROM widget_parts WHERE grommet_id IN (3, 4)"))
        await conn.execute(text("DELETE FROM grommets WHERE id IN (3, 4)"))
    seen = [item["id"] for item in first["items"]]
    cursor = first["next"]
    while cursor is not None:
        page = (await client.get(path, params={"limit": 3, "cursor": cursor})).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
    assert seen == [1, 2, 3, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize("path", RESOURCES)
async def test_empty_table_is_one_empty_page(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next": None}


@pytest.mark.parametrize("path", RESOURCES)
async def test_next_is_null_on_a_last_page_that_is_exactly_full(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, path: str
) -> None:
    await insert_rows(admin_engine, 4)
    first = (await client.get(path, params={"limit": 2})).json()
    assert first["next"] is not None
    last = (await client.get(path, params={"limit": 2, "cursor": first["next"]})).json()
    assert [item["id"] for item in last["items"]] == [3, 4]
    assert last["next"] is None


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "1.5", " 5", "²", "٣", "9" * 5000])
async def test_limit_out_of_bounds_or_not_a_number_is_422_naming_it(
    client: httpx.AsyncClient, path: str, limit: str
) -> None:
    response = await client.get(path, params={"limit": limit})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"detail": "limit must be an integer from 1 to 500", "parameter": "limit"}
    ]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    "abc",
    "!!!",
    "%%%",
    b64(b"after:"),
    b64(b"after:x"),
    b64(b"after:-1"),
    b64(b"after:1.5"),
    b64(b"before:3"),
    b64(b"after:" + b"9" * 5000),
    b64(b"\xff\xfe"),
]


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("after", [2**63 - 1, 2**63, 10**19 - 1])
async def test_a_cursor_past_the_largest_id_is_an_empty_last_page(
    client: httpx.AsyncClient, path: str, after: int
) -> None:
    # The API description admits any 19 digits (what a cursor's pattern can say); past the
    # largest id nothing follows, rather than a 422 for a cursor the description allows.
    response = await client.get(path, params={"cursor": b64(f"after:{after}".encode())})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next": None}


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_a_cursor_this_api_did_not_make_is_422_naming_it(
    client: httpx.AsyncClient, path: str, cursor: str
) -> None:
    response = await client.get(path, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"detail": "cursor is not one this API returned", "parameter": "cursor"}
    ]
