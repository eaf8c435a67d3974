"""`client.subscribe(path)`: the current answer, then each new one after a change made by
another client, across a server restart too; leaving the loop unsubscribes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from carpool_client import Client, ProblemError, Update
from tests.clients.conftest import ServerOnPort
from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH, grommet_body, token

WAIT_S = 20


async def _next(updates: AsyncIterator[Update]) -> Update:
    return await asyncio.wait_for(anext(updates), WAIT_S)


async def _make_grommet(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        answer = await http.post("/grommets", json=grommet_body("M6 live"))
    return str(answer.headers["location"])


async def _patch(base_url: str, path: str, material: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        assert (await http.patch(path, json={"material": material})).status_code == 200


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_subscribe_yields_the_current_answer_then_each_change(
    server: LiveServer, transport: str
) -> None:
    path = await _make_grommet(server.http_url)
    async with Client(server.http_url, token=token(), transport=transport) as client:  # type: ignore[arg-type]
        updates = aiter(client.subscribe(path))
        first = await _next(updates)
        assert (first.status, first.json()["material"]) == (200, "brass")
        async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
            assert first.content == (await http.get(path)).content
        await _patch(server.http_url, path, "steel")
        second = await _next(updates)
        assert second.json()["material"] == "steel" and second.etag != first.etag
        async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
            await http.delete(path)
        gone = await _next(updates)
        assert gone.status == 404 and not gone.ended  # the subscription stays
        await updates.aclose()  # type: ignore[attr-defined]
        assert client.socket.subscriptions == 0


async def test_leaving_the_loop_unsubscribes(server: LiveServer) -> None:
    path = await _make_grommet(server.http_url)
    async with Client(server.http_url, token=token()) as client:
        async for update in client.subscribe(path):
            assert update.status == 200
            break
        for _ in range(100):  # the loop's iterator is closed as it is let go
            if client.socket.subscriptions == 0:
                break
            await asyncio.sleep(0.05)
        assert client.socket.subscriptions == 0
        async with client.subscribe(path) as live:
            assert (await _next(aiter(live))).status == 200
        assert client.socket.subscriptions == 0


async def test_a_refused_subscription_raises_its_problem(server: LiveServer) -> None:
    async with Client(server.http_url, token=token()) as client:
        with pytest.raises(ProblemError) as refused:
            async for _ in client.subscribe("/batch"):
                pass
        assert refused.value.type == "urn:carpool:problem:refused-item"
        updates = [u async for u in client.subscribe("/batch", raise_for_status=False)]
        assert [(u.status, u.ended) for u in updates] == [(400, True)]


async def test_a_subscription_keeps_following_across_a_server_restart(
    server_on: ServerOnPort,
) -> None:
    async with server_on(None) as first:
        port, base_url = first.port, first.http_url
        path = await _make_grommet(base_url)
        client = Client(base_url, token=token())
        updates = aiter(client.subscribe(path))
        assert (await _next(updates)).json()["material"] == "brass"
    async with server_on(port):
        await _patch(base_url, path, "steel")  # while the client may still be away
        assert (await _next(updates)).json()["material"] == "steel"
        await _patch(base_url, path, "bronze")  # and once it is back
        assert (await _next(updates)).json()["material"] == "bronze"
        assert client.socket.connections == 2
        await updates.aclose()  # type: ignore[attr-defined]
        await client.aclose()
