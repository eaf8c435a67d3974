"""End to end over real uvicorn: compression on the wire, and permessage-deflate on /ws."""

from __future__ import annotations

import gzip

import httpx
import orjson
from websockets.asyncio.client import connect

from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH


async def test_uvicorn_sends_the_gzipped_answer_as_it_is(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        for i in range(20):
            body = {"name": f"wire {i}", "material": "brass", "diameter_mm": 6}
            assert (await http.post("/grommets", json=body)).status_code == 201
        plain = await http.get("/grommets", headers={"Accept-Encoding": "identity"})
        async with http.stream("GET", "/grommets", headers={"Accept-Encoding": "gzip"}) as zipped:
            wire = b"".join([part async for part in zipped.aiter_raw()])
            assert zipped.headers["content-encoding"] == "gzip"
            assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(wire) == plain.content
    assert len(wire) < len(plain.content) / 3


async def test_uvicorn_negotiates_permessage_deflate_on_the_socket(server: LiveServer) -> None:
    # websockets offers permessage-deflate by default; uvicorn (websockets implementation,
    # ws_per_message_deflate on by default) accepts it: frames are compressed on the wire.
    async with connect(server.ws_url, additional_headers=AUTH) as ws:
        assert ws.response is not None  # set once the handshake is done
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
        await ws.send(orjson.dumps({"id": "1", "path": "/grommets?limit=1"}).decode())
        assert orjson.loads(await ws.recv())["status"] == 200
