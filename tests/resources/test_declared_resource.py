"""A resource the app does not have, declared through the same public API as the catalog's
(its own table, made here): singly, in a batch, over the socket, live, and in /openapi.json,
with no line of wiring outside its declaration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
import pytest
from openapi_spec_validator import validate
from pydantic import Field
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateTable

from carpool.auth.identity import CATALOG_READ, CATALOG_WRITE
from carpool.data.change_triggers import trigger_statements
from carpool.resources.fields import Input, Name, answer_of
from carpool.resources.resource import Resource
from carpool.resources.routes import Examples, standard_routes
from carpool.web.endpoints import Doc, endpoint
from carpool.web.inputs import body_as
from carpool.web.responses import json_response
from tests.catalog.test_coalescing import queries_of
from tests.conftest import make_container
from tests.helpers import AUTH, ApiDocument, assert_problem, bearer, create_app, served
from tests.websocket_support import AsgiSocket

metadata = MetaData(naming_convention={"uq": "%(table_name)s_%(column_0_name)s_key"})
table = Table(
    "gaskets",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("bore_mm", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class GasketCreate(Input):
    """Body of `POST /gaskets`."""

    name: Name
    bore_mm: Annotated[int, Field(ge=1, le=1000)]


Gasket = answer_of(GasketCreate, name="Gasket", doc="A gasket.")
_AT = "2026-01-05T09:30:00.000000Z"
gaskets = Resource(table, singular="gasket")
blueprint = standard_routes(
    gaskets,
    answer=Gasket,
    create=GasketCreate,
    read=CATALOG_READ,
    write=CATALOG_WRITE,
    examples=Examples(
        {"id": 1, "name": "G1", "bore_mm": 4, "created_at": _AT, "updated_at": _AT},
        create={"name": "G1", "bore_mm": 4},
        patch={"bore_mm": 5},
    ),
)


@pytest.fixture
async def gasket_table(admin_engine: AsyncEngine) -> AsyncIterator[None]:
    """The resource's table with its change triggers, dropped afterwards."""
    async with admin_engine.begin() as conn:
        await conn.execute(CreateTable(table))
        for statement in trigger_statements("gaskets"):
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with admin_engine.begin() as conn:
            await conn.execute(text("DROP TABLE gaskets"))


@pytest.fixture
async def app(database_url: str, gasket_table: None) -> AsyncIterator[Any]:
    application = create_app(make_container(database_url))
    application.blueprint(blueprint)
    yield application


async def test_a_declared_resource_works_singly_in_batches_over_the_socket_and_live(
    app: Any,
) -> None:
    async with served(app, headers=AUTH) as http:
        created = await http.post("/gaskets", json={"name": "G1", "bore_mm": 4})
        assert created.status_code == 201, created.text
        body = created.json()
        assert list(body) == ["id", "name", "bore_mm", "created_at", "updated_at"]
        assert created.headers["location"] == f"/gaskets/{body['id']}"
        single = await http.get(f"/gaskets/{body['id']}")
        assert single.content == created.content and single.headers["etag"]
        assert_problem(await http.post("/gaskets", json={"name": "G1", "bore_mm": 4}), 409)
        assert_problem(await http.post("/gaskets", json={"name": "G2", "bore_mm": 0}), 422)
        assert_problem(await http.patch(f"/gaskets/{body['id']}", json={"bore_mm": None}), 422)
        assert_problem(await http.get("/gaskets/999"), 404)

        more = [(await http.post("/gaskets", json={"name": f"G{i}", "bore_mm": i})).json()
                for i in range(2, 7)]  # fmt: skip
        paths = [f"/gaskets/{g['id']}" for g in [body, *more]]
        batch = await http.post("/batch", json={"load": paths})
        assert queries_of(batch) == 1, "coalesced into one lookup"
        for item, path in zip(batch.json()["responses"], paths, strict=True):
            assert orjson.dumps(item["body"]) == (await http.get(path)).content
        page = (await http.get("/gaskets?limit=2")).json()
        assert [g["id"] for g in page["items"]] == [body["id"], more[0]["id"]]
        assert page["next"] is not None

        socket = await AsgiSocket(app).open()
        socket.send({"id": "f", "path": paths[0]})
        frame = await socket.answer()
        assert orjson.dumps(frame["body"]) == single.content
        socket.send({"type": "subscribe", "id": "live", "path": paths[0]})
        assert (await socket.answer())["type"] == "update"
        etag = single.headers["etag"]
        patched = await http.patch(paths[0], json={"bore_mm": 9}, headers={"if-match": etag})
        assert patched.status_code == 200
        pushed = await socket.answer()
        assert pushed["id"] == "live" and pushed["body"]["bore_mm"] == 9
        assert_problem(await http.delete(paths[0], headers={"if-match": etag}), 412)
        assert (await http.delete(paths[0])).status_code == 204
        gone = await socket.answer()
        assert gone["id"] == "live" and gone["status"] == 404
        socket.leave()
        await socket.ended()


async def test_a_declared_resource_is_in_the_api_description_with_what_the_pipeline_does(
    app: Any,
) -> None:
    async with served(app, headers=AUTH) as http:
        doc = (await http.get("/openapi.json")).json()
    validate(doc)
    item = doc["paths"]["/gaskets/{gasket_id}"]
    ids = {m: op["operationId"] for m, op in item.items() if isinstance(op, dict) and "tags" in op}
    assert ids == {
        "get": "getGasket",
        "head": "getGasketHead",
        "patch": "patchGasket",
        "delete": "deleteGasket",
    }
    assert doc["paths"]["/gaskets"]["get"]["operationId"] == "listGaskets"
    assert doc["paths"]["/gaskets"]["post"]["operationId"] == "createGasket"
    assert {"name": "gaskets"} in doc["tags"]
    assert doc["tags"].index({"name": "gaskets"}) < doc["tags"].index({"name": "batch"})
    get, patch = item["get"], item["patch"]
    assert {"200", "304", "401", "403", "404", "412", "429", "503"} <= set(get["responses"])
    assert "etag" in get["responses"]["200"]["headers"]
    assert {"409", "412", "422"} <= set(patch["responses"]) and "If-Match" in patch["description"]
    assert patch["security"] == [{"bearerAuth": ["catalog:write"]}]
    api = ApiDocument(doc)
    pointer = "/paths/~1gaskets~1{gasket_id}/patch/requestBody/content/application~1json/schema"
    assert api.errors(pointer, {}) and api.errors(pointer, {"bore_mm": None})
    assert not api.errors(pointer, {"bore_mm": 3})


async def test_the_declared_routes_take_the_scopes_stated_once(app: Any) -> None:
    async with served(app) as http:
        assert_problem(await http.get("/gaskets"), 401)
        reader = bearer(CATALOG_READ)
        assert (await http.get("/gaskets", headers=reader)).status_code == 200
        refused = await http.post("/gaskets", json={"name": "G", "bore_mm": 1}, headers=reader)
        assert_problem(refused, 403)
        writer = bearer(CATALOG_WRITE)
        assert_problem(await http.get("/gaskets", headers=writer), 403)


async def test_a_resource_may_omit_a_standard_route_and_declare_its_own_in_its_place(
    database_url: str, gasket_table: None
) -> None:
    own = Blueprint("gaskets_kept")
    standard_routes(
        gaskets,
        answer=Gasket,
        create=GasketCreate,  # the PATCH body is derived from it; its route is replaced
        read=CATALOG_READ,
        write=CATALOG_WRITE,
        examples=Examples({"id": 1, "name": "G1", "bore_mm": 4}),
        omit=("create", "delete"),
        blueprint=own,
    )

    @endpoint(
        own,
        "/gaskets",
        methods=("POST",),
        scope=CATALOG_WRITE,
        doc=Doc("createGasket", "Make a gasket of a bore", "gaskets", body=GasketCreate),
    )
    async def make_gasket(request: Request) -> HTTPResponse:
        values = body_as(request, GasketCreate).model_dump()
        row = await gaskets.create(request.ctx.uow, {**values, "name": values["name"].upper()})
        return json_response(row, status=201)

    application = create_app(make_container(database_url))
    application.blueprint(own)
    async with served(application, headers=AUTH) as http:
        made = await http.post("/gaskets", json={"name": "g1", "bore_mm": 4})
        assert made.status_code == 201 and made.json()["name"] == "G1"
        path = f"/gaskets/{made.json()['id']}"
        assert (await http.get(path)).content == made.content
        assert (await http.delete(path)).status_code == 405, "omitted: not served"
        patched = await http.patch(path, json={"bore_mm": 6})  # derived from the model
        assert patched.status_code == 200 and patched.json()["bore_mm"] == 6
        doc = (await http.get("/openapi.json")).json()
    assert "delete" not in doc["paths"]["/gaskets/{gasket_id}"]
    assert doc["paths"]["/gaskets"]["post"]["summary"] == "Make a gasket of a bore"
