"""An item's or a frame's body is held to REQUEST_MAX_BYTES on the bytes the client sent, not
on their re-encoding (`9e15` is written back as `9000000000000000.0`)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.faults import tally
from tests.websocket_support import AsgiSocket

# 200,000 numbers of 5 bytes ("9e15,"): about 1 MB as sent, 3.8 MB re-encoded.
FLOATS = b"[" + b",".join([b"9e15"] * 200_000) + b"]"
BODY = b'{"name": "floats", "material": "brass", "diameter_mm": 6, "extra": ' + FLOATS + b"}"
JSON = {"content-type": "application/json"}


async def test_an_item_body_is_measured_as_sent(client: httpx.AsyncClient) -> None:
    assert len(BODY) < 1_048_576 < len(orjson.dumps(orjson.loads(BODY)))
    alone = await client.post("/grommets", content=BODY, headers=JSON)
    assert alone.status_code == 422  # an unknown field, judged like any body of its size
    envelope = b'{"requests": [{"method": "POST", "path": "/grommets", "body": ' + BODY + b"}]}"
    assert len(envelope) < 1_048_576
    batch = await client.post("/batch", content=envelope, headers=JSON)
    assert batch.status_code == 200
    item = batch.json()["responses"][0]
    assert item["status"] == 422, item["body"]
    assert item["body"] == alone.json()
    tally.record(item_size_as_sent=1)


async def test_a_frame_body_is_measured_as_sent(app: Any, client: httpx.AsyncClient) -> None:
    socket = await AsgiSocket(app).open()
    try:
        frame = b'{"id": "f", "method": "POST", "path": "/grommets", "body": ' + BODY + b"}"
        socket._to_app.put_nowait({"type": "websocket.receive", "text": frame.decode()})
        answer = await socket.answer()
    finally:
        socket.leave()
        await socket.ended()
    assert answer["status"] == 422
