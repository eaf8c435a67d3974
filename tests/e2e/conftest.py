"""The end-to-end tests' own fixture: carpool under a real uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.live_server import LiveServer, checked_server


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    """`uvicorn asgi:app` on the test database, one per module (a module may define its own)."""
    async with checked_server("asgi:app", database_url) as live:
        yield live
