"""The guide's browser client (docs/live.md) in Debian's Chromium: it shows a live value."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.live_server import LiveServer, checked_server
from tests.helpers import AUTH

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (make install brings it)"
)
if not shutil.which("chromium"):
    pytest.skip(
        "Debian's chromium is not installed (make test installs it with apt-get)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    async with checked_server("tests.e2e.live_page_asgi:app", database_url) as live:
        yield live


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def test_the_documented_page_shows_the_value_and_follows_every_change(
    server: LiveServer, browser: Any
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        body = {"name": "M6", "material": "brass", "diameter_mm": 6}
        assert (await http.post("/grommets", json=body)).json()["id"] == 1
        page = await browser.new_page()
        await page.goto(f"{server.http_url}/_probe/live.html")
        material = page.locator("#material")
        await playwright_api.expect(material).to_have_text("brass", timeout=15_000)

        await http.patch("/grommets/1", json={"material": "steel"})
        await playwright_api.expect(material).to_have_text("steel", timeout=15_000)

        await http.delete("/grommets/1")
        await playwright_api.expect(material).to_have_text("gone (404)", timeout=15_000)
