"""`/openapi.json` describes every route and validates; `/docs` works with no internet."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from openapi_spec_validator import validate

from carpool.web.route_names import template
from tests.conftest import make_container
from tests.helpers import AUTH, create_app


@pytest.fixture(scope="module")
async def plain_app(database_url: str) -> AsyncIterator[Any]:
    """The app as served, without the tests' probe routes."""
    app = create_app(make_container(database_url))
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


async def test_the_document_is_valid_openapi_3_1(http: httpx.AsyncClient) -> None:
    doc = await document(http)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


async def test_every_route_of_the_app_is_in_the_document(
    http: httpx.AsyncClient, plain_app: Any
) -> None:
    paths = (await document(http))["paths"]
    routes = {
        (method.lower(), template(route.uri))
        for route in plain_app.router.routes
        for method in route.methods
    }
    assert len(routes) >= 19
    missing = {(m, p) for m, p in routes if m not in paths.get(p, {})}
    assert not missing
    documented = {(m, p) for p, item in paths.items() for m in item if m != "parameters"}
    assert documented == routes, "the document describes only routes the app serves"


async def test_request_and_response_schemas_are_the_ones_the_routes_use(
    http: httpx.AsyncClient,
) -> None:
    doc = await document(http)
    schemas = doc["components"]["schemas"]
    create = doc["paths"]["/grommets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GrommetCreate"
    }
    assert schemas["GrommetCreate"]["additionalProperties"] is False
    assert set(schemas["GrommetCreate"]["required"]) == {"name", "material", "diameter_mm"}
    assert create["responses"]["422"] == {"$ref": "#/components/responses/Problem422"}
    problem = doc["components"]["responses"]["Problem422"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    batch = doc["paths"]["/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchRequest"
    }
    assert {"BatchAnswer", "BatchItemAnswer", "Availability", "Problem"} <= set(schemas)


async def test_a_real_answer_matches_its_documented_schema(http: httpx.AsyncClient) -> None:
    # Spot check without a JSON Schema engine: the keys the schema requires are the keys sent.
    doc = await document(http)
    created = await http.post(
        "/grommets", json={"name": "M6", "material": "brass", "diameter_mm": 6}
    )
    assert set(created.json()) == set(doc["components"]["schemas"]["Grommet"]["required"])
    problem = await http.get("/grommets/999")
    assert set(problem.json()) == set(doc["components"]["schemas"]["Problem"]["required"])


async def test_docs_ui_is_served_with_local_assets_only(http: httpx.AsyncClient) -> None:
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


async def test_unknown_docs_assets_are_404(http: httpx.AsyncClient) -> None:
    for name in ("nothing.js", "swagger-editor.js", "..%2F..%2Fpyproject.toml"):
        response = await http.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.headers["content-type"] == "application/problem+json"
