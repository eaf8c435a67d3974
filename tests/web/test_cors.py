"""CORS headers at the HTTP level (the real-browser checks are in test_browser.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import make_container
from tests.helpers import AUTH, create_app, served

ALLOWED = "https://app.example"


@pytest.fixture(scope="module")
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_container(database_url, allowed_origins=f"{ALLOWED}, http://x.test/"))
    async with served(app, base_url="http://c", headers=AUTH) as c:
        yield c


def preflight(origin: str, method: str = "DELETE") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, idempotency-key",
    }


async def test_a_preflight_from_an_allowed_origin_is_a_204(http: httpx.AsyncClient) -> None:
    response = await http.options("/grommets/1", headers=preflight(ALLOWED))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "DELETE" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"]
    for name in ("Authorization", "Content-Type", "X-Request-ID", "If-Match", "If-None-Match"):
        assert name in allowed_headers
    assert "Idempotency-Key" in allowed_headers
    assert response.headers["vary"] == "Origin"


async def test_answers_to_an_allowed_origin_expose_the_api_headers(
    http: httpx.AsyncClient,
) -> None:
    body = {"name": "M6", "material": "brass", "diameter_mm": 6}
    response = await http.post("/grommets", json=body, headers={"origin": "http://x.test"})
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == "http://x.test"
    exposed = response.headers["access-control-expose-headers"]
    for name in ("Location", "X-Request-ID", "ETag", "Retry-After", "RateLimit-Policy"):
        assert name in exposed
    assert "Vary" not in exposed and response.headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.evil", "null"])
async def test_other_origins_get_no_cors_headers(http: httpx.AsyncClient, origin: str) -> None:
    refused = await http.options("/grommets", headers=preflight(origin))
    answer = await http.get("/grommets", headers={"origin": origin})
    assert refused.status_code == 405
    assert answer.status_code == 200
    for response in (refused, answer):
        assert not [h for h in response.headers if h.startswith("access-control-")]
