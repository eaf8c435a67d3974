"""Catalog input at its edges: blank names, and what an upstream failure tells the client."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count, make_container
from tests.helpers import AUTH, assert_problem, create_app, create_grommet, create_widget, served

BLANKS = [" ", "   ", "\t", "\n", "\u00a0", "\u3000 \u2003"]


@pytest.mark.parametrize("blank", BLANKS)
async def test_a_blank_name_or_material_is_422_pointing_at_it(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, blank: str
) -> None:
    made = await create_grommet(client, "M6")
    hinge = await create_widget(client, "hinge", [])
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/grommets", {"name": blank, "material": "brass", "diameter_mm": 6}, "/name"),
        ("POST", "/grommets", {"name": "M8", "material": blank, "diameter_mm": 8}, "/material"),
        ("PATCH", f"/grommets/{made['id']}", {"name": blank}, "/name"),
        ("PATCH", f"/grommets/{made['id']}", {"material": blank}, "/material"),
        ("POST", "/widgets", {"name": blank}, "/name"),
        ("PATCH", f"/widgets/{hinge['id']}", {"name": blank}, "/name"),
    ]
    for method, path, body, pointer in cases:
        response = await client.request(method, path, json=body)
        problem = assert_problem(response, 422, "validation")
        assert problem["errors"] == [
            {"detail": "must not be blank (only whitespace)", "pointer": pointer}
        ], (method, path, body)
    assert await count(admin_engine, "grommets") == 1
    assert await count(admin_engine, "widgets") == 1
    assert (await client.get(f"/grommets/{made['id']}")).json() == made


async def test_names_with_spaces_around_or_inside_are_kept_as_given(
    client: httpx.AsyncClient,
) -> None:
    for name in (" M6", "M6 ", "M 6", "\u00a0x"):
        assert (await create_grommet(client, name))["name"] == name


async def test_an_unreachable_inventory_names_no_library_class(database_url: str) -> None:
    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(make_container(database_url, inventory_url=f"http://127.0.0.1:{port}"))
    async with served(app, base_url="http://t", headers=AUTH) as http:
        m3 = await create_grommet(http, "M3")
        made = await create_widget(http, "lonely", [{"grommet_id": m3["id"], "quantity": 1}])
        response = await http.get(f"/widgets/{made['id']}/availability")
    body = assert_problem(response, 502, "upstream-failed")
    assert body["detail"] == f"The inventory service could not be reached for grommet {m3['id']}."
    assert "Error" not in response.text and "aiohttp" not in response.text
