"""Routes declare themselves; sub-requests are decided on the matched route and cannot end
their outer unit of work."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.auth.identity import KNOWN_SCOPES
from carpool.web.endpoints import AUTHENTICATED, PUBLIC, endpoint_of
from tests.conftest import count
from tests.helpers import grommet_item
from tests.websocket_support import AsgiSocket

# Routes that only make sense as the outer call, spelled as a hostile client would.
NOT_COMPOSABLE_SPELLINGS = [
    "/batch#x",
    "/health#",
    "/ready#x",
    "/ws#x",
    "/batch",
    "/batch%23x",
    "/%62atch",
    "/%2Fbatch",
    "/grommets/../batch",
    "//batch",
    "/./batch",
    "/BATCH",
    "/Batch/",
    "/batch/",
    "/batch?x=1",
    "/ws",
    "/health",
    "/ready",
    "/openapi.json",
    "/asyncapi.json",
    "/asyncapi.json#x",
    "/docs",
    "/docs#top",
    "/docs/assets/index.css",
]


def test_every_registered_route_declares_itself(app: Any) -> None:
    undeclared = [route.uri for route in app.router.routes if endpoint_of(route) is None]
    assert undeclared == []
    for route in app.router.routes:
        declared = endpoint_of(route)
        assert declared is not None
        assert declared.scope is PUBLIC or declared.scope in {AUTHENTICATED, *KNOWN_SCOPES}
        assert declared.doc.operation_id and declared.doc.summary


def test_the_public_routes_are_exactly_the_contracts(app: Any) -> None:
    public = {
        (method, "/" + route.path.strip("/"))
        for route in app.router.routes
        if (declared := endpoint_of(route)) is not None
        and declared.public
        and not route.path.startswith("_probe")
        for method in declared.methods
    }
    public.discard(("HEAD", "/batch"))
    assert public == {
        ("GET", "/health"),
        ("HEAD", "/health"),
        ("GET", "/ready"),
        ("HEAD", "/ready"),
        ("GET", "/openapi.json"),
        ("HEAD", "/openapi.json"),
        ("GET", "/docs"),
        ("HEAD", "/docs"),
        ("GET", "/docs/assets/<name:str>"),
        ("HEAD", "/docs/assets/<name:str>"),
        ("GET", "/batch"),
        ("GET", "/asyncapi.json"),
        ("HEAD", "/asyncapi.json"),
        ("GET", "/metrics"),  # public unless METRICS_SCOPE names a scope
        ("HEAD", "/metrics"),
        ("GET", "/client.js"),  # the browser client and its demo page (docs/clients.md)
        ("HEAD", "/client.js"),
        ("GET", "/demo"),
        ("HEAD", "/demo"),
    }


def test_reads_need_catalog_read_and_writes_catalog_write(app: Any) -> None:
    for route in app.router.routes:
        declared = endpoint_of(route)
        assert declared is not None
        if declared.scope not in KNOWN_SCOPES:
            continue
        safe = set(declared.methods) <= {"GET", "HEAD"}
        assert declared.scope == ("catalog:read" if safe else "catalog:write"), route.uri


def test_the_outer_only_routes_are_declared_not_composable(app: Any) -> None:
    outer_only = {"/batch", "/ws", "/health", "/ready", "/openapi.json", "/docs"}
    for route in app.router.routes:
        declared = endpoint_of(route)
        assert declared is not None
        if "/" + route.path.strip("/") in outer_only:
            assert not declared.composable, route.uri


async def test_the_issues_reproducer_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    envelope = {
        "atomic": True,
        "requests": [
            grommet_item("atomic-A"),
            {"method": "POST", "path": "/batch#x", "body": {"load": ["/grommets/1"]}},
            grommet_item("atomic-B", diameter_mm=-1),
        ],
    }
    answer = (await client.post("/batch", json=envelope)).json()
    statuses = [item["status"] for item in answer["responses"]]
    assert answer["committed"] is False
    assert statuses == [201, 400, 424]
    assert answer["responses"][1]["body"]["type"] == "urn:carpool:problem:refused-item"
    assert await count(admin_engine, "grommets") == 0


@pytest.mark.parametrize("path", NOT_COMPOSABLE_SPELLINGS)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_outer_only_route_is_a_400_item_however_spelled(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, path: str, method: str
) -> None:
    item: dict[str, Any] = {"method": method, "path": path}
    if method == "POST":
        item["body"] = {"load": ["/grommets"]}
    envelope = {"atomic": False, "requests": [grommet_item("kept"), item]}
    answer = (await client.post("/batch", json=envelope)).json()
    kept, refused = answer["responses"]
    assert kept["status"] == 201
    assert refused["status"] == 400, refused
    assert refused["body"]["type"] == "urn:carpool:problem:refused-item"
    assert answer["committed"] is True
    assert await count(admin_engine, "grommets") == 1


@pytest.mark.parametrize("path", NOT_COMPOSABLE_SPELLINGS)
async def test_an_outer_only_route_is_a_400_frame_however_spelled(
    socket: AsgiSocket, path: str
) -> None:
    socket.send({"id": "f", "method": "POST", "path": path, "body": {"load": ["/grommets"]}})
    answer = await socket.answer()
    assert answer["id"] == "f"
    assert answer["status"] == 400
    assert answer["body"]["type"] == "urn:carpool:problem:refused-item"


# -- a nested call cannot end the outer unit, even past every guard ----------------------------


async def test_a_nested_batch_run_by_hand_cannot_commit_the_outer_transaction(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    inner = {"atomic": True, "requests": [grommet_item("inner")]}
    envelope = {
        "atomic": True,
        "requests": [
            grommet_item("atomic-A"),
            {"method": "POST", "path": "/_probe/nested-batch", "body": inner},
            grommet_item("atomic-B", diameter_mm=-1),
        ],
    }
    answer = (await client.post("/batch", json=envelope)).json()
    statuses = [item["status"] for item in answer["responses"]]
    assert statuses == [201, 200, 422]
    assert answer["responses"][1]["body"]["committed"] is True  # the inner batch's own view
    assert answer["committed"] is False
    assert await count(admin_engine, "grommets") == 0  # neither atomic-A nor inner was kept


async def test_a_failing_nested_batch_can_only_make_the_outer_call_roll_back(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    inner = {"atomic": True, "requests": [grommet_item("inner", diameter_mm=-1)]}
    response = await client.post("/_probe/nested-batch", json=inner)
    assert response.status_code == 200 and response.json()["committed"] is False
    assert await count(admin_engine, "grommets") == 0
