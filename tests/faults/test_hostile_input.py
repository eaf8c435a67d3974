"""Hostile input: nesting deeper than JSON_MAX_DEPTH, and validation messages that name the rule."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import orjson

from tests.websocket_support import AsgiSocket

GROMMET = {"name": "M6", "material": "brass", "diameter_mm": 6}


def send_text(socket: AsgiSocket, text: str) -> None:
    """A text frame as is (orjson refuses to encode past 254 levels)."""
    socket._to_app.put_nowait({"type": "websocket.receive", "text": text})


def nested(depth: int, leaf: Any = 1) -> Any:
    """A JSON value `depth` arrays deep around `leaf`."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_grommet(depth: int, leaf: Any = 1) -> dict[str, Any]:
    return {**GROMMET, "extra": nested(depth, leaf)}


async def test_a_deep_single_body_is_422_naming_the_depth_rule(client: httpx.AsyncClient) -> None:
    response = await client.post("/grommets", json=deep_grommet(300))
    assert response.status_code == 422, response.text
    assert "nested deeper than 64" in response.text


async def test_a_deep_item_body_is_a_422_item_with_the_single_answer_bytes(
    client: httpx.AsyncClient,
) -> None:
    body = deep_grommet(300)
    single = await client.post("/grommets", json=body)
    batch = await client.post(
        "/batch", json={"requests": [{"method": "POST", "path": "/grommets", "body": body}]}
    )
    assert batch.status_code == 200, batch.text
    item = batch.json()["responses"][0]
    assert item["status"] == 422
    assert orjson.dumps(item["body"]) == orjson.dumps(single.json())


async def test_a_deep_item_in_a_non_atomic_batch_does_not_stop_its_neighbours(
    client: httpx.AsyncClient,
) -> None:
    requests = [
        {"method": "POST", "path": "/grommets", "body": deep_grommet(500)},
        {"method": "POST", "path": "/grommets", "body": GROMMET},
    ]
    batch = await client.post("/batch", json={"atomic": False, "requests": requests})
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()["responses"]] == [422, 201]


async def test_references_nested_past_python_recursion_are_refused_before_anything_runs(
    client: httpx.AsyncClient,
) -> None:
    deep = "[" * 1000 + '"{{g/body/id}}"' + "]" * 1000
    grommet = orjson.dumps(GROMMET).decode()
    body = (
        '{"atomic": false, "requests": ['
        f'{{"id": "g", "method": "POST", "path": "/grommets", "body": {grommet}}},'
        f'{{"method": "POST", "path": "/grommets", "body": {{"name": "x", "extra": {deep}}}}}'
        "]}"
    )
    batch = await client.post("/batch", content=body, headers={"content-type": "application/json"})
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()["responses"]] == [201, 422]


async def test_a_reference_cannot_smuggle_nesting_past_the_limit(
    client: httpx.AsyncClient,
) -> None:
    # Each body is within the limit; substituting the first into the second is not.
    requests = [
        {"id": "e", "path": "/_probe/echo"},
        {"id": "f", "method": "POST", "path": "/_probe/write", "body": nested(60, "x")},
        {"method": "POST", "path": "/grommets", "body": {**GROMMET, "x": nested(40, "{{f}}")}},
    ]
    batch = await client.post("/batch", json={"atomic": False, "requests": requests})
    assert batch.status_code == 200, batch.text
    assert batch.json()["responses"][2]["status"] == 422


async def test_every_deep_frame_gets_exactly_one_answer(
    app: Any, client: httpx.AsyncClient
) -> None:
    socket = await AsgiSocket(app).open()
    try:
        frames = {
            "body-300": {
                "id": "body-300",
                "method": "POST",
                "path": "/grommets",
                "body": deep_grommet(300),
            },
            "frame-300": {"id": "frame-300", "path": "/grommets", "x": nested(300)},
            "batch-300": {
                "id": "batch-300",
                "batch": {
                    "requests": [{"method": "POST", "path": "/grommets", "body": deep_grommet(300)}]
                },
            },
        }
        for frame in frames.values():
            send_text(socket, json.dumps(frame))
        answers = {}
        for _ in frames:
            answer = await socket.answer()
            answers[answer["id"]] = answer
        assert answers["body-300"]["status"] == 400
        assert answers["frame-300"]["status"] == 400
        assert answers["batch-300"]["status"] == 200
        assert answers["batch-300"]["body"]["responses"][0]["status"] == 422
    finally:
        socket.leave()
        await socket.ended()


async def test_a_frame_nested_past_the_decoder_limit_is_answered_400(
    app: Any, client: httpx.AsyncClient
) -> None:
    socket = await AsgiSocket(app).open()
    try:
        send_text(socket, '{"id": "deep", "x": ' + "[" * 5000)
        answer = await socket.answer()
        assert answer["status"] == 400
    finally:
        socket.leave()
        await socket.ended()


async def test_a_bad_item_id_is_refused_naming_the_id_rule(client: httpx.AsyncClient) -> None:
    response = await client.post("/batch", json={"requests": [{"id": "a b", "path": "/grommets"}]})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["pointer"] == "/requests/0/id"
    assert "NUL" not in error["detail"]
    assert "whitespace" in error["detail"]


async def test_a_path_without_a_leading_slash_is_refused_naming_that_rule(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/batch", json={"load": ["%2Fbatch"]})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert "NUL" not in error["detail"]
    assert "start with /" in error["detail"]


async def test_a_nul_in_a_name_still_says_nul(client: httpx.AsyncClient) -> None:
    response = await client.post("/grommets", json={**GROMMET, "name": "a\x00b"})
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["errors"][0]["detail"]


async def test_an_item_referring_to_a_refused_deep_item_fails_its_dependency_at_once(
    client: httpx.AsyncClient,
) -> None:
    # The deep item is answered before anything runs: an item waiting for it must be told
    # at once (424), not wait until BATCH_TIMEOUT_S turns the whole batch into a 504.
    requests = [
        {"id": "deep", "method": "POST", "path": "/grommets", "body": deep_grommet(300)},
        {"id": "read", "path": "/grommets/{{deep/body/id}}"},
        {"id": "ok", "method": "POST", "path": "/grommets", "body": GROMMET},
    ]
    async with asyncio.timeout(5):
        batch = await client.post("/batch", json={"atomic": False, "requests": requests})
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()["responses"]] == [422, 424, 201]
