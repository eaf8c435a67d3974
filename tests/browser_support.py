"""Debian's Chromium, driven by Playwright (which downloads no browser), for the tests that
need a real one."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> ModuleType:
    """`playwright.async_api`, or the calling test module skipped, saying what is missing."""
    api: ModuleType = pytest.importorskip(
        "playwright.async_api", reason="playwright is not installed (make install brings it)"
    )
    if not shutil.which("chromium"):
        pytest.skip(
            "Debian's chromium is not installed (make test installs it with apt-get)",
            allow_module_level=True,
        )
    return api


@asynccontextmanager
async def chromium(api: ModuleType) -> AsyncIterator[Any]:
    """A headless Chromium, closed afterwards."""
    async with api.async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
