"""The browser client (/client.js) in Debian's Chromium against a real uvicorn: calls made
together are one POST /batch, transactions refer to earlier answers, frames go over one
socket, and the demo page follows a widget live, across a server restart too."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser_support import chromium, require_chromium
from tests.clients.conftest import ServerOnPort, calls
from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH, grommet_body, token

playwright_api = require_chromium()
WAIT_MS = 20_000


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(playwright_api) as launched:
        yield launched


async def _seed(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        for n in range(1, 4):
            assert (await http.post("/grommets", json=grommet_body(f"M{n}"))).status_code == 201
        parts = [{"grommet_id": 1, "quantity": 4}, {"grommet_id": 2, "quantity": 2}]
        widget = await http.post("/widgets", json={"name": "hinge", "parts": parts})
        assert widget.status_code == 201


README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_demo(base_url: str) -> tuple[str, dict[str, Any]]:
    """The README's demo address and the change it makes (with this server and a token)."""
    found = re.search(r"open\s+`(http://127\.0\.0\.1:8000/demo#token=\$TOKEN)`", README)
    assert found is not None, "README.md names no demo address"
    change = re.search(r"curl -s -XPATCH localhost:8000/grommets/1 .* -d '(.*)'", README)
    assert change is not None, "README.md makes no change to watch"
    address = found.group(1).replace("http://127.0.0.1:8000", base_url)
    return address.replace("$TOKEN", token(sub="browser")), json.loads(change.group(1))


async def _page(browser: Any, base_url: str, address: str | None = None) -> Any:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(address or f"{base_url}/demo?widget=1#token={token(sub='browser')}")
    page.errors = errors
    return page


_CALLS = """async ([token, paths]) => {
  const { connect } = await import("/client.js");
  const api = connect({ token, raiseForStatus: false });
  const answers = await Promise.all(paths.map((path) => api.get(path)));
  const typed = await api.getGrommet({ grommet_id: 1 });
  return { answers: answers.map((a) => [a.status, a.text, a.headers.etag ?? null]), typed };
}"""

_TRANSACTION = """async (token) => {
  const { connect, TransactionFailed } = await import("/client.js");
  const api = connect({ token });
  const tx = api.transaction();
  const nylon = { name: "M6 nylon", material: "nylon", diameter_mm: 6 };
  const g = tx.post("/grommets", { json: nylon });
  const parts = [{ grommet_id: g.at("body", "id"), quantity: 4 }];
  const w = tx.post("/widgets", { json: { name: "latch", parts } });
  const r = tx.get(`/widgets/${w.ref("/body/id")}?include=grommets`);
  await tx.commit();
  const failing = api.transaction();
  failing.patch("/grommets/1", { json: { material: "steel" } });
  failing.post("/grommets", { json: { name: "M1", material: "brass", diameter_mm: 1 } });
  let statuses = null;
  try { await failing.commit(); } catch (error) {
    if (error instanceof TransactionFailed) statuses = error.responses.map((x) => x.status);
  }
  const ref = String(g.ref("/body/id"));
  return { ref, grommet: g.response.body, read: r.response.body, statuses };
}"""

_SOCKET = """async (token) => {
  const { connect, ProblemError } = await import("/client.js");
  const api = connect({ token, transport: "ws" });
  const [one, two] = await Promise.all([api.get("/grommets/1"), api.get("/grommets/2")]);
  let missing = null;
  try { await api.get("/grommets/999"); } catch (error) {
    if (error instanceof ProblemError) missing = [error.status, error.type];
  }
  const tin = { name: "over ws", material: "tin", diameter_mm: 2 };
  const made = await api.post("/grommets", { json: tin });
  api.close();
  return { names: [one.body.name, two.body.name], missing, made: made.status };
}"""


async def test_calls_made_together_are_one_batch_and_answer_as_the_singles(
    server: LiveServer, browser: Any
) -> None:
    await _seed(server.http_url)
    page = await _page(browser, server.http_url)
    paths = [f"/grommets/{n}" for n in (1, 2, 3, 999)] + ["/widgets/1?include=grommets"]
    batches = await calls(server.http_url, route="/batch", method="POST")
    got = await page.evaluate(_CALLS, [token(sub="browser"), paths])
    assert await calls(server.http_url, route="/batch", method="POST") == batches + 1
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        for (status, text, etag), path in zip(got["answers"], paths, strict=True):
            single = await http.get(path)
            assert (status, text) == (single.status_code, single.text)
            assert etag == single.headers.get("etag")
        assert got["typed"] == (await http.get("/grommets/1")).json()
    assert page.errors == []


async def test_transactions_refer_to_earlier_answers_and_fail_as_a_whole(
    server: LiveServer, browser: Any
) -> None:
    await _seed(server.http_url)
    page = await _page(browser, server.http_url)
    got = await page.evaluate(_TRANSACTION, token(sub="browser"))
    assert got["ref"] == "{{0/body/id}}"
    assert got["read"]["parts"] == [{"grommet": got["grommet"], "quantity": 4}]
    assert got["statuses"] == [200, 409]
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        assert (await http.get("/grommets/1")).json()["material"] == "brass"


async def test_socket_transport_sends_frames_and_types_errors(
    server: LiveServer, browser: Any
) -> None:
    await _seed(server.http_url)
    page = await _page(browser, server.http_url)
    frames = await calls(server.http_url, route="/grommets/{grommet_id}", method="GET",
                         transport="frame")  # fmt: skip
    got = await page.evaluate(_SOCKET, token(sub="browser"))
    assert got == {
        "names": ["M1", "M2"],
        "missing": [404, "urn:carpool:problem:not-found"],
        "made": 201,
    }
    after = await calls(server.http_url, route="/grommets/{grommet_id}", method="GET",
                        transport="frame")  # fmt: skip
    assert after == frames + 3


async def test_the_demo_page_follows_changes_made_over_http_across_a_restart(
    server_on: ServerOnPort, browser: Any
) -> None:
    async with server_on(None) as first:
        port, base_url = first.port, first.http_url
        await _seed(base_url)
        address, readme_change = readme_demo(base_url)
        page = await _page(browser, base_url, address)
        part = page.locator('li[data-grommet="1"]')
        await playwright_api.expect(part).to_have_text("4 x M1 (brass, 6 mm)", timeout=WAIT_MS)
        await playwright_api.expect(page.locator("#name")).to_have_text("hinge")
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
            await http.patch("/grommets/1", json={"material": "steel"})
        await playwright_api.expect(part).to_have_text("4 x M1 (steel, 6 mm)", timeout=WAIT_MS)
    async with server_on(port):
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
            assert readme_change == {"material": "bronze"}
            await http.patch("/grommets/1", json=readme_change)
        await playwright_api.expect(part).to_have_text("4 x M1 (bronze, 6 mm)", timeout=WAIT_MS)
        status = page.locator("#status")
        await playwright_api.expect(status).to_have_text("live (connection 2)", timeout=WAIT_MS)
    assert page.errors == []


_RENEWING = """async (tokens) => {
  const { connect } = await import("/client.js");
  const token = () => (tokens.length > 1 ? tokens.shift() : tokens[0]);
  const api = connect({ transport: "ws", token });
  const before = (await api.get("/grommets/1")).status;
  await new Promise((resolve) => setTimeout(resolve, 4500)); // past the first token's expiry
  const after = (await api.get("/grommets/1")).status;
  const connections = api.socket.connections;
  api.close();
  return { before, after, connections, left: tokens.length };
}"""


async def test_a_token_function_renews_the_socket_before_it_expires(
    server: LiveServer, browser: Any
) -> None:
    await _seed(server.http_url)
    page = await _page(browser, server.http_url)
    tokens = [token(sub="browser", ttl_s=3), token(sub="browser", ttl_s=600)]
    got = await page.evaluate(_RENEWING, tokens)
    assert got == {"before": 200, "after": 200, "connections": 1, "left": 1}
