"""The clients' tests run against carpool under a real uvicorn, restartable on its port."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

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


_UNAVAILABLE = (
    b'{"type":"urn:carpool:problem:unavailable","title":"Service Unavailable","status":503,'
    b'"detail":"try again"}'
)


@dataclass
class Front:
    """A real HTTP server in front of carpool that fails the calls it is told to, in turn:
    `"503"` answers 503 with `Retry-After: 1`; `"drop"` passes the call on, then drops the
    connection before answering. Other calls pass; with `only` set (`"POST /batch"`), every
    call but those. `keys` has every call's `Idempotency-Key`, `seen` its method, path, key."""

    url: str
    faults: list[str] = field(default_factory=list)
    only: str | None = None
    keys: list[str | None] = field(default_factory=list)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)


@pytest.fixture
async def front(server: LiveServer) -> AsyncIterator[Front]:
    """A `Front` before the module's server."""
    upstream = httpx.AsyncClient(base_url=server.http_url)
    front = Front("")

    async def forward(request: web.Request) -> web.StreamResponse:
        front.keys.append(request.headers.get("Idempotency-Key"))
        front.seen.append((request.method, request.path, front.keys[-1]))
        aimed = front.only in (None, f"{request.method} {request.path}")
        fault = front.faults.pop(0) if front.faults and aimed else None
        if fault == "503":
            headers = {"Retry-After": "1", "Content-Type": "application/problem+json"}
            return web.Response(status=503, body=_UNAVAILABLE, headers=headers)
        sent = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        answer = await upstream.request(
            request.method, request.path_qs, headers=sent, content=await request.read()
        )
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
        skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in skip}
        return web.Response(status=answer.status_code, body=answer.content, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    front.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield front
    await runner.cleanup()
    await upstream.aclose()
