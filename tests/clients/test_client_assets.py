"""`GET /client.js` and `GET /demo`: public, cacheable, revalidated with their ETag."""

from __future__ import annotations

import httpx

from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH


async def test_the_module_is_public_with_an_etag_and_answers_304_when_unchanged(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        module = await http.get("/client.js")
        assert module.status_code == 200
        assert module.headers["content-type"].startswith("text/javascript")
        assert "export function connect" in module.text
        assert module.headers["cache-control"] == "public, no-cache"
        etag = module.headers["etag"]
        again = await http.get("/client.js", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        page = await http.get("/demo")
        assert page.status_code == 200
        assert 'import("/client.js")' in page.text
        assert "script-src 'self' 'sha256-" in page.headers["content-security-policy"]


async def test_the_module_cannot_run_in_a_batch(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        answer = await http.post("/batch", json={"load": ["/client.js"]})
    assert answer.json()["responses"][0]["status"] == 400
