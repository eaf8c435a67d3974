"""The clients' tests run against carpool under a real uvicorn, restartable on its port."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from tests.e2e.live_server import LiveServer, checked_server, live_server

_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    """`uvicorn asgi:app` on the test database, one per module."""
    async with checked_server("asgi:app", database_url) as live:
        yield live


ServerOnPort = Callable[[int | None], AbstractAsyncContextManager[LiveServer]]


@pytest.fixture
def server_on(database_url: str) -> ServerOnPort:
    """Start `uvicorn asgi:app` on a given port (again, after a stop: a restart)."""

    def start(port: int | None = None) -> AbstractAsyncContextManager[LiveServer]:
        return live_server("asgi:app", {"DATABASE_URL": database_url}, port=port)

    return start


async def calls(base_url: str, *, route: str, method: str, transport: str | None = None) -> float:
    """`carpool_calls_total` of `route` and `method` (and `transport`), all statuses summed."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        text = (await http.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None or found.group(1) != "carpool_calls_total":
            continue
        labels = dict(_LABEL.findall(found.group(2)))
        wanted = {"route": route, "method": method}
        if transport is not None:
            wanted["transport"] = transport
        if all(labels.get(key) == value for key, value in wanted.items()):
            total += float(found.group(3))
    return total
