"""POST /batch at its edges: odd references, paths and headers, oversized work, failed reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from carpool.data.sql import Connection
from carpool.web.responses import json_response
from tests import probe_routes
from tests.conftest import count, make_container, wait_for_idle_pool
from tests.helpers import AUTH, create_app, grommet_item, probe, served


async def items(client: httpx.AsyncClient, envelope: Any) -> list[dict[str, Any]]:
    response = await client.post("/batch", json=envelope)
    assert response.status_code == 200, response.text
    answered: list[dict[str, Any]] = response.json()["responses"]
    return answered


# -- references -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["²", "00", "9" * 5000])
async def test_a_pointer_token_that_is_no_array_index_is_424_not_500(
    client: httpx.AsyncClient, token: str
) -> None:
    envelope = {
        "atomic": False,
        "requests": [
            grommet_item("A"),
            {"id": "a", "path": "/grommets"},
            {"path": f"/x/{{{{a/body/items/{token}}}}}"},
        ],
    }
    _, listed, referring = await items(client, envelope)
    assert len(listed["body"]["items"]) == 1
    assert referring["status"] == 424
    assert referring["body"]["type"] == "urn:carpool:problem:failed-dependency"


@pytest.mark.parametrize(("key", "expected"), [("{{a/body/id}}", "/1"), ("{{a/status}}", "/201")])
async def test_a_reference_in_an_object_key_becomes_its_text(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, key: str, expected: str
) -> None:
    body = {"name": "B", "material": "brass", "diameter_mm": 6, key: 1}
    envelope = {
        "atomic": False,
        "requests": [
            {"id": "a", **grommet_item("A")},
            {"method": "POST", "path": "/grommets", "body": body},
        ],
    }
    created, refused = await items(client, envelope)
    assert created["status"] == 201
    # The key is now "1" (or "201"): an unknown field of the grommet, as the single POST says.
    assert refused["status"] == 422
    assert [e["pointer"] for e in refused["body"]["errors"]] == [expected]
    assert await count(admin_engine, "grommets") == 1


async def test_a_header_reference_is_substituted_verbatim(client: httpx.AsyncClient) -> None:
    name = 'M6 "nylon" 50%/x'
    envelope = {
        "requests": [
            {"id": "g", **grommet_item(name)},
            {
                "path": "/_probe/echo",
                "headers": {"x-name": "{{g/body/name}}", "x-at": "{{g/status}}"},
            },
        ]
    }
    _, echoed = await items(client, envelope)
    assert echoed["body"]["headers"] == {"x-name": name, "x-at": "201"}


async def test_references_cannot_expand_an_item_past_the_request_size_limit(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    # 20 kB referenced 100 times is 2 MB: more than any single request may send (1 MiB).
    big = {"id": "big", "path": "/_probe/echo", "headers": {"x-pad": "x" * 20_000}}
    envelope = {
        "atomic": False,
        "requests": [
            big,
            {"method": "POST", "path": "/grommets", "body": ["{{big/body}}"] * 100},
            {"path": "/grommets?q=" + "{{big/body/headers/x-pad}}" * 60},
            {"path": "/_probe/echo", "headers": {"x-copy": "{{big/body/headers/x-pad}}" * 60}},
            {"method": "POST", "path": "/grommets", "body": ["{{big/body}}"] * 10},
        ],
    }
    answered = await items(client, envelope)
    assert [item["status"] for item in answered] == [200, 413, 413, 413, 422]
    for item in answered[1:4]:
        assert item["body"]["status"] == 413
        assert "limit of 1048576 bytes" in item["body"]["detail"]
    assert await count(admin_engine, "grommets") == 0


# -- paths and headers ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/grommets/é", "/grommets/1 2", "/widgets?name=größe x"])
async def test_an_item_path_is_encoded_as_an_http_client_would(
    client: httpx.AsyncClient, path: str
) -> None:
    (item,) = await items(client, {"requests": [{"path": path}]})
    single = await client.get(path)  # httpx percent-encodes what may not go on the wire
    assert item["status"] == single.status_code
    assert item["body"] == single.json()


@pytest.mark.parametrize(
    "headers",
    [
        {"x-a": "one\r\nx-b: two"},
        {"x-a": "one\ntwo"},
        {"x-a": "nul\x00"},
        {"": "empty name"},
        {"x a": "space in the name"},
        {"x-a:": "colon in the name"},
    ],
)
async def test_an_item_may_not_carry_headers_no_http_request_could(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, headers: dict[str, str]
) -> None:
    envelope = {"atomic": False, "requests": [{**grommet_item("M6"), "headers": headers}]}
    (item,) = await items(client, envelope)
    assert item["status"] == 400
    assert item["body"]["type"] == "urn:carpool:problem:refused-item"
    assert await count(admin_engine, "grommets") == 0


async def test_a_reference_cannot_smuggle_a_line_break_into_a_header(
    client: httpx.AsyncClient,
) -> None:
    envelope = {
        "atomic": False,
        "requests": [
            {"id": "g", **grommet_item("two\r\nlines")},
            {"path": "/_probe/echo", "headers": {"x-name": "{{g/body/name}}"}},
        ],
    }
    created, echoed = await items(client, envelope)
    assert created["status"] == 201
    assert echoed["status"] == 400
    assert echoed["body"]["type"] == "urn:carpool:problem:refused-item"


# -- the envelope -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [{"requests": [{}] * 100_000}, {"load": [1] * 100_000}, {"requests": [{"path": "/"}] * 51}],
)
async def test_too_many_items_is_one_error_whatever_the_items_are(
    client: httpx.AsyncClient, envelope: dict[str, Any]
) -> None:
    response = await client.post("/batch", json=envelope)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["pointer"] == f"/{next(iter(envelope))}"
    assert "at most 50 items" in error["detail"]


# -- reads ------------------------------------------------------------------------------------


async def test_a_batch_of_reads_is_read_only_like_each_single_read(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    single = await client.get("/_probe/write")
    assert single.status_code >= 400
    for envelope in (
        {"requests": [{"path": "/grommets"}, {"path": "/_probe/write"}]},
        {"load": ["/_probe/write"]},
    ):
        answered = await items(client, envelope)
        assert answered[-1]["status"] == single.status_code
    assert await count(admin_engine, "grommets") == 0


edge_routes = Blueprint("edge", url_prefix="/_edge")


async def _divide_by_zero(conn: Connection) -> None:
    await conn.execute("SELECT 1/0")


@probe(edge_routes, "/fails-in-the-database", method="GET")
async def fails_in_the_database(request: Request) -> HTTPResponse:
    """A read the database refuses: the transaction it ran in is aborted."""
    await request.ctx.uow.run(_divide_by_zero)
    return json_response({"unreachable": True})


@pytest.fixture(scope="module")
async def edge_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """An app of its own with a read that fails in the database."""
    container = make_container(database_url)
    app = create_app(container)
    app.blueprint(probe_routes.blueprint)
    app.blueprint(edge_routes)
    async with served(app, base_url="http://edge", headers=AUTH) as http:
        engine = container.database()
        yield http, engine


FAILS = {"path": "/_edge/fails-in-the-database"}


@pytest.mark.parametrize(
    ("requests", "statuses"),
    [
        ([grommet_item("before"), FAILS], [201, 500]),
        (
            [grommet_item("before"), FAILS, grommet_item("after"), {"path": "/grommets"}],
            [201, 500, 201, 200],
        ),
    ],
)
async def test_a_read_failing_in_the_database_keeps_a_non_atomic_batchs_writes(
    edge_client: tuple[httpx.AsyncClient, Database],
    admin_engine: AsyncEngine,
    requests: list[dict[str, Any]],
    statuses: list[int],
) -> None:
    client, engine = edge_client
    response = await client.post("/batch", json={"atomic": False, "requests": requests})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [item["status"] for item in answer["responses"]] == statuses
    assert answer["committed"] is True
    # What the answer says was committed, was.
    written = sum(1 for status in statuses if status == 201)
    assert await count(admin_engine, "grommets") == written
    assert await wait_for_idle_pool(engine) == 0
