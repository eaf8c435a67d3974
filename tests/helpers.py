"""Test helpers used across the suite (one place for each)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sanic import Blueprint

from carpool import app as app_module
from carpool.auth.identity import KNOWN_SCOPES
from carpool.auth.tokens import issue_token
from carpool.web.endpoints import PUBLIC, Doc, H, endpoint
from tests.fake_inventory import FakeInventory

_serial = itertools.count()
TEST_SECRET = "carpool-test-secret-of-at-least-32-bytes"
"""AUTH_JWT_SECRET of every test app (conftest's `make_container`)."""


def token(*scopes: str, sub: str = "tester", ttl_s: float = 3600, **claims: Any) -> str:
    """A token signed with the tests' secret; with no `scopes`, every scope."""
    return issue_token(TEST_SECRET, sub=sub, scopes=scopes or KNOWN_SCOPES, ttl_s=ttl_s, **claims)


def bearer(*scopes: str, sub: str = "tester", **claims: Any) -> dict[str, str]:
    """An Authorization header carrying `token(*scopes, sub=sub)`."""
    return {"authorization": f"Bearer {token(*scopes, sub=sub, **claims)}"}


AUTH = bearer()
"""Full-scope credentials: what the test clients send unless a test says otherwise."""


def create_app(container: Any) -> app_module.CarpoolApp:
    """`carpool.app.create_app`, for a process that builds many apps (the test session).

    Sanic refuses two apps of one name in a process, and its TouchUp rewrites shared classes
    in place: a second run would fail at startup. Production builds one app per process.
    """
    serial = next(_serial)
    app = app_module.create_app(container, name=f"carpool{serial}")
    app.config.TOUCHUP = serial == 0
    return app


# -- the catalog, through the API -------------------------------------------------------------


def grommet_body(name: str, diameter_mm: float = 6, *, material: str = "brass") -> dict[str, Any]:
    """The body of a `POST /grommets` that creates grommet `name`."""
    return {"name": name, "material": material, "diameter_mm": diameter_mm}


def grommet_item(name: str, diameter_mm: float = 6) -> dict[str, Any]:
    """A batch item (or frame, given an id) that creates grommet `name`."""
    return {"method": "POST", "path": "/grommets", "body": grommet_body(name, diameter_mm)}


async def create_grommet(
    client: httpx.AsyncClient, name: str, diameter_mm: float = 6
) -> dict[str, Any]:
    """Create grommet `name` through the API; its body (fails unless 201)."""
    response = await client.post("/grommets", json=grommet_body(name, diameter_mm))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_widget(
    client: httpx.AsyncClient, name: str, parts: list[dict[str, int]]
) -> dict[str, Any]:
    """Create widget `name` of `parts` through the API; its body (fails unless 201)."""
    response = await client.post("/widgets", json={"name": name, "parts": parts})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def seed_catalog(
    client: httpx.AsyncClient, *, widgets: tuple[tuple[str, int], ...] = (("hinge", 1),)
) -> None:
    """Grommets A, B, C (ids 1 to 3 on empty tables), and each `(name, grommet_id)` of
    `widgets` as a widget made of 2 of that grommet."""
    for name in ("A", "B", "C"):
        await create_grommet(client, name)
    for name, grommet_id in widgets:
        await create_widget(client, name, [{"grommet_id": grommet_id, "quantity": 2}])


async def hinge(http: httpx.AsyncClient, inventory: FakeInventory) -> dict[str, Any]:
    """A widget of 2 x M6 (10 in stock) and 3 x M8 (7 in stock): 2 can be built, M8 limits."""
    m6 = await create_grommet(http, "M6")
    m8 = await create_grommet(http, "M8")
    inventory.stock.update({m6["id"]: 10, m8["id"]: 7})
    parts = [{"grommet_id": m6["id"], "quantity": 2}, {"grommet_id": m8["id"], "quantity": 3}]
    return await create_widget(http, "hinge", parts)


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """A problem+json answer with `status` (and type `urn:carpool:problem:<slug>` if given),
    saying what went wrong, with no trace of the server's insides; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text and ".py" not in response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert set(body) <= {"type", "title", "status", "detail", "errors"}
    assert body["title"] and body["detail"]
    if slug is not None:
        assert body["type"] == f"urn:carpool:problem:{slug}"
    return body


# -- routes of the tests' own -----------------------------------------------------------------


def probe(blueprint: Blueprint, uri: str, *, method: str = "GET") -> Callable[[H], H]:
    """Declare a test-only route like every route: public, composable, described as a probe."""
    doc = Doc(f"probe{method}{uri}", "Test probe", "probe")
    return endpoint(blueprint, uri, methods=(method,), scope=PUBLIC, doc=doc)


# -- the generated API documents --------------------------------------------------------------

_BASE = "urn:carpool:document"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class ApiDocument:
    """A generated document whose schemas validate instances, `$ref`s resolved within it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = DRAFT202012.create_resource(document)
        self._registry: Registry[Any] = Registry().with_resource(_BASE, resource)

    def node(self, pointer: str) -> Any:
        """The node at JSON Pointer `pointer`."""
        node: Any = self.document
        for part in pointer.split("/")[1:]:
            key = part.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node

    def follow(self, pointer: str) -> str:
        """`pointer`, or where the `$ref` found there leads (to the end of the chain)."""
        while isinstance(node := self.node(pointer), dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
        return pointer

    def errors(self, schema_pointer: str, instance: Any) -> list[str]:
        """Why `instance` does not match the schema at `schema_pointer` (none if it does)."""
        validator = Draft202012Validator(
            {"$ref": f"{_BASE}#{schema_pointer}"},
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(instance)
        ]

    def operation_pointer(self, method: str, template: str) -> str:
        return f"/paths/{_escape(template)}/{method.lower()}"

    def check_answer(self, method: str, template: str, response: httpx.Response) -> None:
        """Fail unless `response` is an answer the document promises for the operation: its
        status listed, its media type and headers as described, its body valid."""
        where = f"{method} {template} -> {response.status_code}"
        responses = self.node(self.operation_pointer(method, template))["responses"]
        assert str(response.status_code) in responses, f"{where}: status not documented"
        pointer = self.follow(
            f"{self.operation_pointer(method, template)}/responses/{response.status_code}"
        )
        answer = self.node(pointer)
        for header in answer.get("headers", {}):
            assert header in response.headers, f"{where}: no {header} header"
        if method == "HEAD" or response.status_code in (204, 304):
            assert response.content == b"", where
            return
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        content = answer.get("content", {})
        keys = {key.split(";")[0].strip(): key for key in content}
        key = keys.get(media_type, "*/*")
        assert key in content, f"{where}: {media_type} not documented ({list(content)})"
        if "schema" in content[key]:
            schema = f"{pointer}/content/{_escape(key)}/schema"
            assert not self.errors(schema, response.json()), (
                where,
                self.errors(schema, response.json()),
            )


@contextlib.asynccontextmanager
async def served(
    app: Any, *, base_url: str = "http://carpool.test", headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """`app` started through its ASGI lifespan (as a server runs it) and a client calling it
    in-process (`headers`: every request's, e.g. `AUTH`); the app is stopped afterwards."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=base_url, headers=headers
        ) as http:
            yield http


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to `path`; the created resource's body (fails unless 201)."""
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made
