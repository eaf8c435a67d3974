"""Live answers over /ws (in process): subscribe, updates after committed changes, unsubscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.websocket_support import AsgiSocket


@pytest.fixture
async def ws(app: Any, client: httpx.AsyncClient) -> AsyncIterator[AsgiSocket]:
    socket = await AsgiSocket(app).open()
    yield socket
    socket.leave()
    await socket.ended()


async def grommet(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "material": "brass", "diameter_mm": 5, **fields}
    response = await client.post("/grommets", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def widget(client: httpx.AsyncClient, name: str, parts: list[tuple[int, int]]) -> int:
    body = {"name": name, "parts": [{"grommet_id": g, "quantity": q} for g, q in parts]}
    response = await client.post("/widgets", json=body)
    assert response.status_code == 201, response.text
    widget_id: int = response.json()["id"]
    return widget_id


async def raw_update(ws: AsgiSocket, timeout: float = 10.0) -> tuple[dict[str, Any], str]:
    message = await ws.next_message(timeout)
    assert message["type"] == "websocket.send", message
    return orjson.loads(message["text"]), message["text"]


async def update(ws: AsgiSocket, timeout: float = 10.0) -> dict[str, Any]:
    return (await raw_update(ws, timeout))[0]


async def no_frame(ws: AsgiSocket, within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await ws.next_message(within)


def body_text(raw: str) -> bytes:
    """The body value of an update frame, as the bytes it was spliced from."""
    head = '"body":'
    start = raw.index(head) + len(head)
    end = raw.rindex(',"ended"') if raw.endswith(',"ended":true}') else len(raw) - 1
    return raw[start:end].encode()


async def test_subscribe_answers_the_get_at_once_then_pushes_its_new_bytes_after_a_commit(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await grommet(client, "M6")
    ws.send({"type": "subscribe", "id": "s1", "path": f"/grommets/{made['id']}"})
    first, raw = await raw_update(ws)
    single = await client.get(f"/grommets/{made['id']}")
    assert first["type"] == "update" and first["id"] == "s1" and first["status"] == 200
    assert body_text(raw) == single.content
    assert first["headers"]["etag"].startswith('"')

    await client.patch(f"/grommets/{made['id']}", json={"material": "steel"})
    pushed, raw = await raw_update(ws)
    assert pushed["status"] == 200 and pushed["body"]["material"] == "steel"
    assert body_text(raw) == (await client.get(f"/grommets/{made['id']}")).content
    assert pushed["headers"]["etag"] != first["headers"]["etag"]
