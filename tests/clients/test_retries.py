"""Retries and tokens: an unsafe call carries an Idempotency-Key and is sent again on a 503
(after its Retry-After) or a lost answer, and writes once; a callable token is asked again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool_client import Client, ProblemError, RetryPolicy
from tests.conftest import count
from tests.e2e.live_server import LiveServer
from tests.helpers import grommet_body, token

_UNAVAILABLE = (
    b'{"type":"urn:carpool:problem:unavailable","title":"Service Unavailable","status":503,'
    b'"detail":"try again"}'
)


@dataclass
class Front:
    """A real HTTP server in front of carpool that fails the calls it is told to, in turn:
    `"503"` answers 503 with `Retry-After: 1`; `"drop"` passes the call on, then drops the
    connection before answering. Other calls pass."""

    url: str
    faults: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)


@pytest.fixture
async def front(server: LiveServer) -> AsyncIterator[Front]:
    upstream = httpx.AsyncClient(base_url=server.http_url)
    front = Front("")

    async def forward(request: web.Request) -> web.StreamResponse:
        front.keys.append(request.headers.get("Idempotency-Key"))
        fault = front.faults.pop(0) if front.faults else None
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


async def test_an_unsafe_call_is_retried_after_503_with_the_same_key(
    front: Front, admin_engine: AsyncEngine
) -> None:
    front.faults = ["503", "503"]
    loop = asyncio.get_running_loop()
    async with Client(front.url, token=token()) as client:
        started = loop.time()
        made = await client.post("/grommets", json=grommet_body("M6 retried"))
        waited = loop.time() - started
    assert made.status == 201
    assert waited >= 2.0, "each Retry-After (1 s) was honoured"
    assert len(front.keys) == 3 and front.keys[0] is not None
    assert len(set(front.keys)) == 1, "every attempt carries the same Idempotency-Key"
    assert await count(admin_engine, "grommets") == 1


async def test_a_write_whose_answer_was_lost_is_sent_again_and_written_once(
    front: Front, admin_engine: AsyncEngine
) -> None:
    front.faults = ["drop"]
    async with Client(front.url, token=token()) as client:
        made = await client.post("/grommets", json=grommet_body("M6 lost"))
        assert made.status == 201  # the stored answer, replayed
        assert made.json()["name"] == "M6 lost"
    assert len(front.keys) == 2 and front.keys[0] == front.keys[1]
    assert await count(admin_engine, "grommets") == 1


async def test_retries_stop_at_the_policy_and_raise_the_last_answer(front: Front) -> None:
    front.faults = ["503", "503"]
    retry = RetryPolicy(attempts=1, max_delay_s=0.01)
    async with Client(front.url, token=token(), retry=retry) as client:
        with pytest.raises(ProblemError) as unavailable:
            await client.get("/grommets/1")
    assert unavailable.value.status == 503
    assert unavailable.value.type == "urn:carpool:problem:unavailable"
    assert len(front.keys) == 2


async def test_a_callable_token_is_asked_again_for_every_request(server: LiveServer) -> None:
    handed: list[str] = []

    async def fresh() -> str:
        handed.append(token(sub="refreshing"))
        return handed[-1]

    async with Client(server.http_url, token=fresh) as client:
        await client.post("/grommets", json=grommet_body("M6"))
        await client.get("/grommets/1")
    assert len(handed) == 2


async def test_a_socket_renews_an_expiring_token_with_an_auth_frame(server: LiveServer) -> None:
    handed: list[str] = []

    def short_lived() -> str:
        handed.append(token(sub="renewing", ttl_s=3))
        return handed[-1]

    async with Client(server.http_url, token=short_lived, transport="ws") as client:
        await client.post("/grommets", json=grommet_body("M6"))
        await asyncio.sleep(4)  # past the first token's expiry
        assert (await client.get("/grommets/1")).status == 200
        assert client.socket.connections == 1, "renewed on the same socket"
    assert len(handed) >= 2
