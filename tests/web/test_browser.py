"""CORS and the WebSocket Origin check in a real browser (Chromium, driven by Playwright).

Node enforces neither CORS nor Origin; a browser does. Pages are served from second origins
on 127.0.0.1 (other ports): one listed in ALLOWED_ORIGINS, one not.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser_support import chromium, require_chromium
from tests.conftest import count, make_container
from tests.helpers import create_app, token
from tests.uvicorn_in_process import serving

DOC = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()

playwright_api = require_chromium()


def browser_example() -> tuple[str, list[str]]:
    found = re.search(r"```javascript\n(.*?)```\n\nIt prints:\n\n```\n(.*?)```", DOC, re.S)
    assert found is not None, "no browser example in docs/security.md"
    return found.group(1), found.group(2).splitlines()


async def _page_server() -> tuple[web.AppRunner, str]:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>a page</title>", content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture(scope="module")
async def origins() -> AsyncIterator[tuple[str, str]]:
    """Two page origins: the first will be allowed, the second not."""
    allowed, allowed_url = await _page_server()
    foreign, foreign_url = await _page_server()
    yield allowed_url, foreign_url
    await allowed.cleanup()
    await foreign.cleanup()


@pytest.fixture(scope="module")
async def api(database_url: str, origins: tuple[str, str]) -> AsyncIterator[str]:
    """carpool under uvicorn, allowing the first page origin; its http:// URL."""
    served = create_app(make_container(database_url, allowed_origins=origins[0]))
    async with serving(served) as address:
        yield f"http://{address}"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium(playwright_api) as launched:
        yield launched


async def run_in_page(browser: Any, origin: str, code: str) -> Any:
    """Run `code` (an async function body) in a page of `origin`; its console.log lines, or
    the error it threw as a last line."""
    page = await browser.new_page()
    try:
        await page.goto(origin + "/")
        wrapped = (
            "async () => { const lines = []; const console = { log: (...a) => lines.push("
            "a.join(' ')) }; try {\n" + code + "\n} catch (e) { lines.push(`threw ${e.name}`); }"
            " return lines; }"
        )
        return await page.evaluate(wrapped)
    finally:
        await page.close()


def example_for(api: str) -> tuple[str, list[str]]:
    code, expected = browser_example()
    code = code.replace('"http://127.0.0.1:8000"', f'"{api}"')
    code = code.replace("paste a token from `carpool token`", token(sub="page"))
    return code, expected


async def test_the_docs_browser_example_runs_from_an_allowed_origin(
    browser: Any, api: str, origins: tuple[str, str], admin_engine: AsyncEngine
) -> None:
    code, expected = example_for(api)
    assert await run_in_page(browser, origins[0], code) == expected
    assert await count(admin_engine, "grommets") == 1


async def test_another_origin_can_neither_call_the_api_nor_open_the_socket(
    browser: Any, api: str, origins: tuple[str, str], admin_engine: AsyncEngine
) -> None:
    code, _ = example_for(api)
    rest_only = code.split("// WebSocket")[0]
    assert await run_in_page(browser, origins[1], rest_only) == ["threw TypeError"]
    socket_only = (
        f"const ws = new WebSocket({api.replace('http', 'ws')!r} + '/ws');"
        " const how = await new Promise((resolve) => {"
        " ws.onopen = () => resolve('opened'); ws.onerror = () => resolve('refused'); });"
        " console.log(how);"
    )
    assert await run_in_page(browser, origins[1], socket_only) == ["refused"]
    assert await run_in_page(browser, origins[0], socket_only) == ["opened"]
    assert await count(admin_engine, "grommets") == 0, "the preflight stopped the write"


async def test_the_docs_page_renders_under_its_content_security_policy(
    browser: Any, api: str
) -> None:
    page = await browser.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    try:
        await page.goto(api + "/docs")
        await page.wait_for_selector("#swagger-ui .info", timeout=20_000)
    finally:
        await page.close()
    assert not [v for v in violations if "Content Security Policy" in v], violations
