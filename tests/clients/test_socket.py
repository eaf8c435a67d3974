"""`transport="ws"`: every call a frame on one socket, answers matched by id, the same
answers as the single requests; across a server restart the socket comes back."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from carpool_client import Client, ConnectionLost, ProblemError, RetryPolicy
from tests.clients.conftest import ServerOnPort, calls
from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH, grommet_body, token


async def test_concurrent_calls_are_frames_on_one_socket_answering_as_singles(
    server: LiveServer,
) -> None:
    frames = await calls(server.http_url, route="/grommets/{grommet_id}", method="GET",
                         transport="frame")  # fmt: skip
    batches = await calls(server.http_url, route="/batch", method="POST")
    async with Client(server.http_url, token=token(), transport="ws") as client:
        made = [await client.post("/grommets", json=grommet_body(f"W{n}")) for n in range(10)]
        paths = [answer.headers["location"] for answer in made] + ["/grommets/999"]
        answers = await asyncio.gather(
            *(client.get(path, raise_for_status=False) for path in paths)
        )
        assert client.socket.connections == 1
        with pytest.raises(ProblemError) as missing:
            await client.get("/grommets/999")
        assert missing.value.type == "urn:carpool:problem:not-found"
    after = await calls(server.http_url, route="/grommets/{grommet_id}", method="GET",
                        transport="frame")  # fmt: skip
    assert after == frames + 12
    assert await calls(server.http_url, route="/batch", method="POST") == batches
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        for answer, path in zip(answers, paths, strict=True):
            single = await http.get(path)
            assert (answer.status, answer.content) == (single.status_code, single.content)
            assert answer.headers.get("etag") == single.headers.get("etag")


async def test_a_refused_handshake_raises_its_problem(server: LiveServer) -> None:
    async with Client(server.http_url, token="not-a-token", transport="ws") as client:
        with pytest.raises(ProblemError) as refused:
            await client.get("/grommets/1")
    assert refused.value.status == 401


async def test_calls_go_on_after_the_server_restarts(server_on: ServerOnPort) -> None:
    async with server_on(None) as first:
        port = first.port
        client = Client(first.http_url, token=token(), transport="ws")
        made = await client.post("/grommets", json=grommet_body("M6 restart"))
    async with server_on(port):
        again = await client.get(made.headers["location"])
        assert again.json()["name"] == "M6 restart"
        assert client.socket.connections == 2
        await client.aclose()


async def test_calls_fail_when_no_socket_can_be_opened() -> None:
    from tests.e2e.live_server import _free_port

    nowhere = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    async with Client(
        nowhere, token=token(), transport="ws", retry=RetryPolicy(attempts=1)
    ) as client:
        client.socket._open_timeout_s = 0.5
        with pytest.raises(ConnectionLost):
            await client.get("/grommets/1")
