"""The guide's browser page (docs/live.md) in Debian's Chromium, served as the guide says
(from an origin of its own, which carpool allows): it shows a live value."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.browser_support import chromium, require_chromium
from tests.e2e.live_server import LiveServer, _free_port, live_server
from tests.helpers import AUTH, token

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "live.md"

playwright_api = require_chromium()


@pytest.fixture(scope="module")
async def page_origin() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A second origin serving the guide's page as `/live.html` (its text set by the test)."""
    served: dict[str, str] = {}

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=served["live.html"], content_type="text/html")

    app = web.Application()
    app.router.add_get("/live.html", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", served
    await runner.cleanup()


@pytest.fixture(scope="module")
async def server(
    database_url: str, page_origin: tuple[str, dict[str, str]]
) -> AsyncIterator[LiveServer]:
    """carpool, allowing the page's origin, as the guide says to start it."""
    env = {"DATABASE_URL": database_url, "ALLOWED_ORIGINS": page_origin[0]}
    async with live_server("asgi:app", env) as live:
        yield live
    assert "Traceback" not in live.log(), live.log()


def documented_page(carpool: str) -> str:
    """The guide's `html live-page` block, with its token and carpool's URL filled in."""
    found = re.search(r"```html live-page\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert found is not None, "docs/live.md has no live-page example"
    placeholder = "paste a token from `carpool token --scope catalog:read`"
    page = found.group(1).replace(placeholder, token("catalog:read", sub="page"))
    assert 'const CARPOOL = "http://127.0.0.1:8000"' in page
    return page.replace("http://127.0.0.1:8000", carpool)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(playwright_api) as launched:
        yield launched


async def test_the_documented_page_shows_the_value_and_follows_every_change(
    server: LiveServer, browser: Any, page_origin: tuple[str, dict[str, str]]
) -> None:
    origin, served = page_origin
    served["live.html"] = documented_page(server.http_url)
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        body = {"name": "M6", "material": "brass", "diameter_mm": 6}
        assert (await http.post("/grommets", json=body)).json()["id"] == 1
        page = await browser.new_page()
        await page.goto(f"{origin}/live.html")
        material = page.locator("#material")
        await playwright_api.expect(material).to_have_text("brass", timeout=15_000)

        await http.patch("/grommets/1", json={"material": "steel"})
        await playwright_api.expect(material).to_have_text("steel", timeout=15_000)

        await http.delete("/grommets/1")
        await playwright_api.expect(material).to_have_text("gone (404)", timeout=15_000)
