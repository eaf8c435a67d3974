"""Scopes hold for every call: 401 and 403 answers (RFC 6750), the same for items and frames."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count, make_container
from tests.helpers import bearer, create_app, create_grommet, grommet_body, served, token

READER = bearer("catalog:read", sub="reader")
WRITER = bearer("catalog:write", sub="writer")
NOBODY = {"authorization": ""}
M6 = grommet_body("M6")


async def test_no_token_is_a_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/grommets", headers=NOBODY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="carpool"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:carpool:problem:unauthorized"


async def test_a_token_without_the_scope_is_a_403_naming_it(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await client.post("/grommets", json=M6, headers=READER)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="carpool", error="insufficient_scope", scope="catalog:write"'
    )
    assert await count(admin_engine, "grommets") == 0


async def test_each_scope_opens_its_own_methods(client: httpx.AsyncClient) -> None:
    made = await create_grommet(client, "M6")
    path = f"/grommets/{made['id']}"
    assert (await client.get(path, headers=READER)).status_code == 200
    assert (await client.head(path, headers=READER)).status_code == 200
    assert (await client.get(path, headers=WRITER)).status_code == 403
    assert (await client.patch(path, json={"name": "M7"}, headers=WRITER)).status_code == 200
    assert (await client.delete(path, headers=READER)).status_code == 403
    assert (await client.delete(path, headers=WRITER)).status_code == 204


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/docs", "/batch"])
async def test_public_routes_need_no_token(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path, headers=NOBODY)).status_code == 200


async def test_post_batch_needs_a_token_even_for_items_anonymous_callers_may_run(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/batch", json={"load": ["/grommets"]}, headers=NOBODY)
    assert response.status_code == 401


async def test_a_batch_item_answers_what_the_single_call_answers_with_the_same_token(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    made = await create_grommet(client, "M6")
    path = f"/grommets/{made['id']}"
    items: list[dict[str, Any]] = [
        {"method": "GET", "path": path},
        {"method": "DELETE", "path": path},
        {"method": "POST", "path": "/grommets", "body": {**M6, "name": "M8"}},
    ]
    singles = [
        await client.request(item["method"], item["path"], json=item.get("body"), headers=READER)
        for item in items
    ]
    envelope = {"atomic": False, "requests": items}
    answer = (await client.post("/batch", json=envelope, headers=READER)).json()
    for single, item in zip(singles, answer["responses"], strict=True):
        assert item["status"] == single.status_code
        assert item["body"] == single.json()
    assert [item["status"] for item in answer["responses"]] == [200, 403, 403]
    assert await count(admin_engine, "grommets") == 1, "no item wrote what the token may not"


async def test_an_items_403_rolls_back_an_atomic_batch(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    made = await create_grommet(client, "M6")
    writer_only = bearer("catalog:write")
    envelope = {
        "requests": [
            {"method": "POST", "path": "/grommets", "body": {**M6, "name": "M8"}},
            {"path": f"/grommets/{made['id']}"},
        ]
    }
    answer = (await client.post("/batch", json=envelope, headers=writer_only)).json()
    assert [item["status"] for item in answer["responses"]] == [201, 403]
    assert answer["committed"] is False
    assert await count(admin_engine, "grommets") == 1


# -- AUTH_ANONYMOUS_SCOPES ----------------------------------------------------------------


@pytest.fixture
async def public_reads(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    container = make_container(database_url, auth_anonymous_scopes="catalog:read")
    app = create_app(container)
    async with served(app, base_url="http://open") as http:
        yield http


async def test_anonymous_scopes_open_reads_to_callers_without_a_token(
    public_reads: httpx.AsyncClient,
) -> None:
    assert (await public_reads.get("/grommets")).status_code == 200
    refused = await public_reads.post("/grommets", json=M6)
    assert refused.status_code == 401, "no token: a token is what is missing"
    assert (await public_reads.post("/grommets", json=M6, headers=bearer())).status_code == 201
    stale = {"authorization": f"Bearer {token(ttl_s=-5)}"}
    assert (await public_reads.get("/grommets", headers=stale)).status_code == 401, (
        "a refused token is never silently downgraded to the anonymous view"
    )


# -- headers -------------------------------------------------------------------------------


async def test_every_answer_says_nosniff_and_authenticated_ones_no_store(
    client: httpx.AsyncClient,
) -> None:
    answers = [
        await client.get("/health", headers=NOBODY),
        await client.get("/grommets"),
        await client.get("/nowhere"),
    ]
    assert all(a.headers["x-content-type-options"] == "nosniff" for a in answers)
    assert "cache-control" not in answers[0].headers
    assert answers[1].headers["cache-control"] == "no-store"


async def test_the_docs_page_has_a_policy_allowing_only_its_own_origin(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs", headers=NOBODY)
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self' 'sha256-" in policy
    assert "http" not in policy and "*" not in policy


@pytest.fixture
async def untimed(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_container(database_url, server_timing=False))
    async with served(app, base_url="http://u") as http:
        yield http


async def test_server_timing_can_be_turned_off(untimed: httpx.AsyncClient) -> None:
    response = await untimed.get("/grommets", headers=bearer())
    assert response.status_code == 200
    assert "server-timing" not in response.headers


# -- logs ----------------------------------------------------------------------------------


async def test_logs_carry_the_callers_sub_never_the_token(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = bearer(sub="alice")
    with caplog.at_level(logging.DEBUG):
        await client.get("/grommets", headers=credentials)
        await client.post("/batch", json={"load": ["/grommets"]}, headers=credentials)
    records = [r for r in caplog.records if r.name == "carpool.requests"]
    assert {getattr(r, "sub", None) for r in records} == {"alice"}
    secret = credentials["authorization"].split()[1]
    assert all(secret not in str(vars(r)) for r in caplog.records)


async def test_metrics_scope_protects_metrics_like_any_declared_scope(database_url: str) -> None:
    app = create_app(make_container(database_url, metrics_scope="ops:metrics"))
    async with served(app, base_url="http://m") as http:
        anonymous = await http.get("/metrics")
        catalog_only = await http.get("/metrics", headers=bearer())
        operator = await http.get("/metrics", headers=bearer("ops:metrics"))
    assert anonymous.status_code == 401
    assert catalog_only.status_code == 403
    assert catalog_only.headers["www-authenticate"].endswith('scope="ops:metrics"')
    assert operator.status_code == 200
