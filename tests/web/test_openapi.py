"""`/openapi.json` is generated from the route declarations, validates, and tells the truth:
every real answer of every operation, success and error, matches it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field
from sanic import Blueprint

from carpool.route_names import template
from carpool.web.endpoints import Answer, Doc, endpoint, endpoint_of
from carpool.web.openapi.document import build_document
from tests.conftest import make_container
from tests.fake_inventory import FakeInventory, fake_inventory
from tests.helpers import AUTH, ApiDocument, create_app

M6 = {"name": "M6", "material": "brass", "diameter_mm": 6}
ACME = {"name": "Acme", "country": "DE"}


@pytest.fixture(scope="module")
async def inventory() -> AsyncIterator[FakeInventory]:
    async with fake_inventory() as fake:
        fake.default_stock = 12
        yield fake


@pytest.fixture(scope="module")
async def plain_app(database_url: str, inventory: FakeInventory) -> AsyncIterator[Any]:
    """The app as served (no probe routes), with an inventory service."""
    app = create_app(make_container(database_url, inventory_url=inventory.url))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


@pytest.fixture
async def http(plain_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carpool.test", headers=AUTH
    ) as client:
        yield client


async def document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method not in ("parameters", "description")
    }


async def test_the_document_is_valid_openapi_3_1(http: httpx.AsyncClient) -> None:
    doc = await document(http)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


async def test_every_route_of_the_app_is_in_the_document_and_nothing_else(
    http: httpx.AsyncClient, plain_app: Any
) -> None:
    routes = {
        (method, template(route.uri))
        for route in plain_app.router.routes
        for method in route.methods
    }
    assert len(routes) >= 31
    assert set(operations(await document(http))) == routes


async def test_operations_come_from_the_route_declarations(
    http: httpx.AsyncClient, plain_app: Any
) -> None:
    described = operations(await document(http))
    for route in plain_app.router.routes:
        declared = endpoint_of(route)
        assert declared is not None
        for method in route.methods - {"HEAD"}:
            operation = described[(method, template(route.uri))]
            assert operation["operationId"] == declared.doc.operation_id
            assert operation["summary"] == declared.doc.summary
            assert operation["tags"] == [declared.doc.tag]


async def test_every_operation_has_an_id_a_summary_and_examples_that_match_its_schemas(
    http: httpx.AsyncClient,
) -> None:
    doc = await document(http)
    api = ApiDocument(doc)
    ids = [operation["operationId"] for operation in operations(doc).values()]
    assert len(ids) == len(set(ids)), "operationIds are unique"
    for (method, path), operation in operations(doc).items():
        where = f"{method} {path}"
        assert operation["summary"], where
        pointer = api.operation_pointer(method, path)
        for i, parameter in enumerate(operation.get("parameters", [])):
            assert "example" in parameter, f"{where}: no example of {parameter['name']}"
            schema = f"{pointer}/parameters/{i}/schema"
            assert not api.errors(schema, parameter["example"]), where
        if "requestBody" in operation:
            body = operation["requestBody"]["content"]["application/json"]
            assert "example" in body, f"{where}: no example body"
            schema = f"{pointer}/requestBody/content/application~1json/schema"
            assert not api.errors(schema, body["example"]), (
                where,
                api.errors(schema, body["example"]),
            )
        answered = [
            (status, answer)
            for status, answer in operation["responses"].items()
            if "$ref" not in answer and status != "default"
        ]
        assert answered, f"{where}: no success answer"
        if method == "HEAD":
            continue
        for status, answer in answered:
            for media_type, content in answer.get("content", {}).items():
                assert "example" in content, f"{where} {status}: no example answer"
                if "schema" in content:
                    key = media_type.replace("/", "~1")
                    schema = f"{pointer}/responses/{status}/content/{key}/schema"
                    assert not api.errors(schema, content["example"]), (where, status)
    for name, response in doc["components"]["responses"].items():
        (content,) = response["content"].values()
        schema = f"/components/responses/{name}/content/application~1problem+json/schema"
        assert not api.errors(schema, content["example"]), name


async def test_the_batch_envelope_schema_is_the_envelopes_own(http: httpx.AsyncClient) -> None:
    doc = await document(http)
    api = ApiDocument(doc)
    body = "/paths/~1batch/post/requestBody/content/application~1json/schema"
    item = {"method": "GET", "path": "/grommets"}
    assert not api.errors(body, {"requests": [{**item, "id": "a"}]})
    assert api.errors(body, {"requests": [{**item, "id": "a/b"}]}), "the id pattern is kept"
    assert api.errors(body, {"requests": [{**item, "method": "BREW"}]})
    assert not api.errors(body, {"requests": [{**item, "method": "patch"}]}), "any case"
    assert api.errors(body, {"load": ["/a"] * 51}), "at most BATCH_MAX_ITEMS"
    assert not api.errors(body, {"load": ["/a", "/a"]}), "a path may repeat (ids /a, /a#2)"
    assert api.errors(body, {"requests": [item], "load": ["/a"]})
    example = doc["paths"]["/batch"]["post"]["requestBody"]["content"]["application/json"]
    tried = await http.post("/batch", json=example["example"])  # what "Try it out" sends
    assert tried.status_code == 200
    assert tried.json()["committed"] is True
    assert [item["status"] for item in tried.json()["responses"]] == [201, 201, 200]
    api.check_answer("POST", "/batch", tried)


async def test_the_input_schemas_refuse_what_the_routes_refuse(http: httpx.AsyncClient) -> None:
    api = ApiDocument(await document(http))
    grommet_patch = (
        "/paths/~1grommets~1{grommet_id}/patch/requestBody/content/application~1json/schema"
    )
    widget_create = "/paths/~1widgets/post/requestBody/content/application~1json/schema"
    for refused in ({"name": None}, {}, {"name": "   "}, {"name": "a\x00"}, {"colour": "red"}):
        assert api.errors(grommet_patch, refused), refused
        response = await http.patch("/grommets/1", json=refused)
        assert response.status_code in (404, 422)
    assert not api.errors(grommet_patch, {"name": " M6 "})
    assert api.errors(widget_create, {"name": "w", "parts": [{"grommet_id": 1, "quantity": 0}]})
    assert api.errors(widget_create, {"name": "w", "parts": [{"grommet_id": 1, "quantity": "4"}]})
    get_grommet = (await document(http))["paths"]["/grommets/{grommet_id}"]["get"]
    (path_id,) = [p for p in get_grommet["parameters"] if p["in"] == "path"]
    assert path_id["schema"]["type"] == "integer" and "404" in get_grommet["responses"]
    assert "404" in path_id["description"], "a non-number id is a 404 (the int converter)"
    assert (await http.get("/grommets/abc")).status_code == 404


def _scenario(widget_body: dict[str, Any]) -> list[tuple[str, str, str, Any, int]]:
    """(method, template, path, JSON body or raw bytes, expected status), run in order."""
    too_big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    return [
        ("GET", "/health", "/health", None, 200),
        ("GET", "/ready", "/ready", None, 200),
        ("GET", "/metrics", "/metrics", None, 200),
        ("GET", "/client.js", "/client.js", None, 200),
        ("GET", "/demo", "/demo", None, 200),
        ("POST", "/suppliers", "/suppliers", ACME, 201),
        ("POST", "/suppliers", "/suppliers", {**ACME, "country": "FR"}, 409),
        ("POST", "/suppliers", "/suppliers", {"name": "Bolt", "country": "de"}, 422),
        ("POST", "/suppliers", "/suppliers", {"name": "Bolt", "country": "FR"}, 201),
        ("GET", "/suppliers", "/suppliers?limit=1", None, 200),
        ("GET", "/suppliers", "/suppliers?limit=0", None, 422),
        ("GET", "/suppliers/{supplier_id}", "/suppliers/1", None, 200),
        ("GET", "/suppliers/{supplier_id}", "/suppliers/999", None, 404),
        ("PATCH", "/suppliers/{supplier_id}", "/suppliers/1", {"country": "FR"}, 200),
        ("PATCH", "/suppliers/{supplier_id}", "/suppliers/1", {"country": "ZZ"}, 422),
        ("POST", "/grommets", "/grommets", {**M6, "supplier_id": 1}, 201),
        ("GET", "/grommets", "/grommets?include=supplier", None, 200),
        ("GET", "/grommets/{grommet_id}", "/grommets/1?include=supplier", None, 200),
        ("GET", "/grommets/{grommet_id}", "/grommets/1?include=suppliers", None, 422),
        ("DELETE", "/suppliers/{supplier_id}", "/suppliers/1", None, 409),
        ("DELETE", "/suppliers/{supplier_id}", "/suppliers/3", None, 204),
        ("DELETE", "/suppliers/{supplier_id}", "/suppliers/3", None, 404),
        ("POST", "/grommets", "/grommets", {**M6, "name": "M8"}, 201),
        ("POST", "/grommets", "/grommets", {**M6, "name": "M9", "supplier_id": 999}, 422),
        ("POST", "/grommets", "/grommets", M6, 409),
        ("POST", "/grommets", "/grommets", {**M6, "diameter_mm": -1}, 422),
        ("POST", "/grommets", "/grommets", b"{not json", 400),
        ("POST", "/grommets", "/grommets", too_big, 413),
        ("GET", "/grommets", "/grommets?limit=1", None, 200),
        ("GET", "/grommets", "/grommets?limit=0", None, 422),
        ("GET", "/grommets", "/grommets?cursor=bogus", None, 422),
        ("GET", "/grommets/{grommet_id}", "/grommets/1", None, 200),
        ("GET", "/grommets/{grommet_id}", "/grommets/abc", None, 404),
        ("GET", "/grommets/{grommet_id}", "/grommets/999", None, 404),
        ("PATCH", "/grommets/{grommet_id}", "/grommets/1", {"diameter_mm": 6.5}, 200),
        ("PATCH", "/grommets/{grommet_id}", "/grommets/1", {"name": None}, 422),
        ("PATCH", "/grommets/{grommet_id}", "/grommets/1", {"name": "M8"}, 409),
        ("PATCH", "/grommets/{grommet_id}", "/grommets/999", {"name": "x"}, 404),
        ("PATCH", "/grommets/{grommet_id}", "/grommets/1", too_big, 413),
        ("POST", "/widgets", "/widgets", widget_body, 201),
        ("POST", "/widgets", "/widgets", {**widget_body, "name": "w2"}, 201),
        ("POST", "/widgets", "/widgets", widget_body, 409),
        (
            "POST",
            "/widgets",
            "/widgets",
            {"name": "q", "parts": [{"grommet_id": 1, "quantity": 4.0}]},
            422,
        ),
        ("GET", "/widgets", "/widgets?include=grommets", None, 200),
        ("GET", "/widgets", "/widgets?include=parts", None, 422),
        ("GET", "/widgets/{widget_id}", "/widgets/1?include=grommets", None, 200),
        ("GET", "/widgets/{widget_id}", "/widgets/1", None, 200),
        ("GET", "/widgets/{widget_id}", "/widgets/1?include=x", None, 422),
        ("GET", "/widgets/{widget_id}", "/widgets/999", None, 404),
        ("GET", "/widgets/{widget_id}/availability", "/widgets/1/availability", None, 200),
        ("GET", "/widgets/{widget_id}/availability", "/widgets/999/availability", None, 404),
        ("PATCH", "/widgets/{widget_id}", "/widgets/1", {"name": "hinge-2"}, 200),
        ("PATCH", "/widgets/{widget_id}", "/widgets/1", {"parts": None}, 422),
        ("PATCH", "/widgets/{widget_id}", "/widgets/999", {"name": "x"}, 404),
        ("DELETE", "/grommets/{grommet_id}", "/grommets/1", None, 409),
        ("DELETE", "/widgets/{widget_id}", "/widgets/2", None, 204),
        ("DELETE", "/widgets/{widget_id}", "/widgets/2", None, 404),
        ("DELETE", "/grommets/{grommet_id}", "/grommets/2", None, 204),
        ("DELETE", "/grommets/{grommet_id}", "/grommets/2", None, 404),
        ("GET", "/batch", "/batch", None, 200),
        ("POST", "/batch", "/batch", {"load": ["/grommets/1", "/widgets/1", "/nope"]}, 200),
        ("POST", "/batch", "/batch", {"requests": []}, 422),
        ("POST", "/batch", "/batch", b"[", 400),
        ("GET", "/openapi.json", "/openapi.json", None, 200),
        ("GET", "/asyncapi.json", "/asyncapi.json", None, 200),
        ("GET", "/docs", "/docs", None, 200),
        ("GET", "/docs/assets/{name}", "/docs/assets/index.css", None, 200),
        ("GET", "/docs/assets/{name}", "/docs/assets/swagger-editor.js", None, 404),
        ("GET", "/ws", "/ws", None, 400),
    ]


# What no test can make happen here, and why.
_NO_SUCCESS_HERE = {("GET", "/ws")}  # 101: a WebSocket handshake (tests/compose, tests/e2e)
_NO_ERROR_HERE = {("GET", "/ready")}  # 503 needs a database that is down or not migrated


async def test_every_real_answer_of_every_operation_matches_the_document(
    http: httpx.AsyncClient,
) -> None:
    api = ApiDocument(await document(http))
    described = operations(api.document)
    seen: dict[tuple[str, str], set[int]] = {}
    widget_body = {"name": "hinge", "parts": [{"grommet_id": 1, "quantity": 4}]}
    for method, path_template, path, body, status in _scenario(widget_body):
        with_head = method == "GET" and ("HEAD", path_template) in described
        for asked in (method, "HEAD") if with_head else (method,):
            if isinstance(body, bytes):
                headers = {"content-type": "application/json"}
                response = await http.request(asked, path, content=body, headers=headers)
            else:
                response = await http.request(asked, path, json=body)
            assert response.status_code == status, (asked, path, response.text)
            api.check_answer(asked, path_template, response)
            seen.setdefault((asked, path_template), set()).add(status)
            if asked == "GET" and status == 200 and "etag" in response.headers:
                probes = await _conditional_probes(http, path, response.headers["etag"])
                for probe in probes:
                    api.check_answer(asked, path_template, probe)
                    seen[(asked, path_template)].add(probe.status_code)
    for key, operation in described.items():
        statuses = seen.get(key, set())
        if key not in _NO_SUCCESS_HERE:
            assert any(status < 300 for status in statuses), f"{key}: no success answer checked"
        documented_errors = [s for s in operation["responses"] if s.startswith(("4", "5"))]
        if documented_errors and key[0] != "HEAD" and key not in _NO_ERROR_HERE:
            assert any(status >= 400 for status in statuses), f"{key}: no error answer checked"


async def _conditional_probes(
    http: httpx.AsyncClient, path: str, etag: str
) -> list[httpx.Response]:
    """What the pipeline answers a read whatever its route: 304 to its own ETag in
    If-None-Match (200 if the answer changed meanwhile: /metrics), 412 to an If-Match that
    does not match."""
    unchanged = await http.get(path, headers={"if-none-match": etag})
    assert unchanged.status_code in (200, 304), path
    refused = await http.get(path, headers={"if-match": '"not-this-one"'})
    assert refused.status_code == 412, path
    return [unchanged, refused]


async def test_every_status_the_pipeline_answers_is_documented_for_every_operation(
    http: httpx.AsyncClient, plain_app: Any
) -> None:
    """Whatever a route's handler does, the pipeline may answer these (its method, unit of
    work, scope and conditions say which); a document that omits one for any operation fails.
    The statuses are stated here as the pipeline's behaviour, not read from the generator."""
    described = operations(await document(http))
    for route in plain_app.router.routes:
        declared = endpoint_of(route)
        assert declared is not None
        for method in route.methods:
            documented = set(described[(method, template(route.uri))]["responses"])
            expected: set[int] = set()
            if not declared.websocket:
                expected.add(412)  # If-Match not holding, or conditions the route ignores
                if method in ("GET", "HEAD") and any(s < 300 for s in declared.doc.answers):
                    expected.add(304)
            if declared.scope is not None and not declared.websocket:
                expected |= {401, 429} | ({403} if declared.scope != "*" else set())
            if declared.unit:
                expected.add(503)
                if method not in ("GET", "HEAD", "OPTIONS"):
                    expected |= {409, 422} if not declared.websocket else {409}
            missing = {str(status) for status in expected} - documented
            assert not missing, (method, route.uri, sorted(missing))


async def test_reads_document_their_etag_and_revalidation(http: httpx.AsyncClient) -> None:
    doc = await document(http)
    for (method, path), operation in operations(doc).items():
        if method != "GET" or path == "/ws":
            continue
        assert "etag" in operation["responses"]["200"].get("headers", {}), path
        assert "If-None-Match" in operation["description"], path
    patch = doc["paths"]["/grommets/{grommet_id}"]["patch"]
    assert "etag" in patch["responses"]["200"]["headers"]
    assert "If-Match" in patch["description"] and "Idempotency-Key" in patch["description"]
    create = doc["paths"]["/grommets"]["post"]
    assert set(create["responses"]["201"]["headers"]) == {"location", "etag"}
    assert "Idempotency-Key" in create["description"]


async def test_an_unknown_method_is_405_with_allow_as_the_document_says(
    http: httpx.AsyncClient,
) -> None:
    doc = await document(http)
    api = ApiDocument(doc)
    response = await http.put("/grommets", json=M6)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert "405" in doc["paths"]["/grommets"]["description"]
    schema = "/components/responses/Problem405/content/application~1problem+json/schema"
    assert not api.errors(schema, response.json())


async def test_docs_ui_is_served_with_local_assets_only_and_links_the_asyncapi_document(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text, "nothing may come from another host"
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
    assert len(assets) >= 3
    for asset in assets:
        response = await http.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100
    bundle = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert "/openapi.json" in page.text
    assert 'href="/asyncapi.json"' in page.text


async def test_unknown_docs_assets_are_404(http: httpx.AsyncClient) -> None:
    for name in ("nothing.js", "swagger-editor.js", "..%2F..%2Fpyproject.toml"):
        response = await http.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.headers["content-type"] == "application/problem+json"


class GasketCreate(BaseModel):
    """A resource the app does not have, declared as a new one would be."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1)


class Gasket(GasketCreate):
    id: int


async def test_a_new_resource_is_described_with_no_edit_to_the_description_code(
    database_url: str,
) -> None:
    blueprint = Blueprint("gaskets")

    @endpoint(
        blueprint,
        "/gaskets/<gasket_id:int>",
        methods=("PATCH",),
        scope="catalog:write",
        doc=Doc(
            "patchGasket",
            "Rename a gasket",
            "gaskets",
            answers={200: Answer("The gasket now.", Gasket, {"id": 1, "name": "Seal"})},
            body=GasketCreate,
            body_example={"name": "Seal"},
            example={"gasket_id": 1},
        ),
    )
    async def patch_gasket(request: Any, gasket_id: int) -> Any:
        raise NotImplementedError

    app = create_app(make_container(database_url))
    app.blueprint(blueprint)
    doc = build_document(app)
    operation = doc["paths"]["/gaskets/{gasket_id}"]["patch"]
    assert operation["operationId"] == "patchGasket"
    assert operation["parameters"][0]["schema"]["type"] == "integer"
    assert {"200", "400", "404", "409", "413", "415", "422", "503"} <= set(operation["responses"])
    assert doc["components"]["schemas"]["GasketCreate"]["additionalProperties"] is False
    assert "Gasket" in doc["components"]["schemas"]
    validate(doc)
