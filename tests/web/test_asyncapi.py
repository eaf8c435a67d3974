"""`/asyncapi.json` describes the `/ws` protocol as AsyncAPI 3, and real frames match it."""

from __future__ import annotations

import warnings
from typing import Any

import httpx

from tests.helpers import ApiDocument
from tests.websocket_support import AsgiSocket

with warnings.catch_warnings():
    # asyncapi3 0.0.2 names model fields "schema", which pydantic warns about at import.
    warnings.simplefilter("ignore", UserWarning)
    from asyncapi3.models.asyncapi import AsyncAPI3


async def asyncapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [ref for value in node.values() for ref in _refs(value)] + (
            [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        )
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_the_document_is_asyncapi_3_and_every_reference_resolves(
    client: httpx.AsyncClient,
) -> None:
    doc = await asyncapi(client)
    assert doc["asyncapi"] == "3.0.0"
    AsyncAPI3.model_validate(doc)  # the AsyncAPI 3.0 object model refuses a malformed document
    api = ApiDocument(doc)
    for ref in _refs(doc):
        assert ref.startswith("#/"), ref
        api.node(ref.removeprefix("#"))  # raises if it leads nowhere
    (channel,) = doc["channels"].values()
    assert channel["address"] == "/ws"
    names = set(doc["components"]["messages"])
    assert {"request", "batch", "answer", "batchAnswer", "error"} <= names
    for operation in doc["operations"].values():
        assert operation["action"] == "receive"
        assert operation["reply"]["messages"], "every frame the server reads is answered"


async def test_every_message_example_matches_its_payload_schema(
    client: httpx.AsyncClient,
) -> None:
    doc = await asyncapi(client)
    api = ApiDocument(doc)
    for name, message in doc["components"]["messages"].items():
        (example,) = message["examples"]
        assert not api.errors(f"/components/messages/{name}/payload", example["payload"]), name


def _payload(name: str) -> str:
    return f"/components/messages/{name}/payload"


async def test_real_frames_and_their_answers_match_the_document(
    client: httpx.AsyncClient, socket: AsgiSocket
) -> None:
    api = ApiDocument(await asyncapi(client))
    body = {"name": "M6", "material": "brass", "diameter_mm": 6}
    sent: list[tuple[str, dict[str, Any], str]] = [
        ("request", {"id": "1", "method": "POST", "path": "/grommets", "body": body}, "answer"),
        ("request", {"id": "2", "path": "/grommets/1"}, "answer"),
        ("request", {"id": "3", "path": "/grommets/999"}, "answer"),
        ("batch", {"id": "4", "batch": {"load": ["/grommets/1", "/nope"]}}, "batchAnswer"),
        ("batch", {"id": "5", "batch": {"requests": []}}, "batchAnswer"),
    ]
    for message, frame, answer_message in sent:
        # An invalid envelope is a valid frame to send: its answer is the batch's 422.
        assert bool(api.errors(_payload(message), frame)) is (frame["id"] == "5"), frame
        socket.send(frame)
        answer = await socket.answer()
        assert answer["id"] == frame["id"]
        assert not api.errors(_payload(answer_message), answer), (frame, answer)
    for bad in ({"id": "6"}, {"id": "7", "path": "/x", "colour": "red"}, {"path": 1}):
        assert api.errors(_payload("request"), bad), bad
        socket.send(bad)
        answer = await socket.answer()
        assert answer["status"] == 400
        assert not api.errors(_payload("error"), answer), answer


async def test_docs_link_the_asyncapi_document(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert 'href="/asyncapi.json"' in page.text
    openapi = (await client.get("/openapi.json")).json()
    assert openapi["externalDocs"]["url"] == "/asyncapi.json"


async def test_each_operation_names_its_own_reply_correlated_by_the_frame_id(
    client: httpx.AsyncClient, socket: AsgiSocket
) -> None:
    doc = await asyncapi(client)
    replies = {
        name.split("_", 1)[1]: sorted(ref["$ref"].rsplit("/", 1)[1] for ref in reply["messages"])
        for name, op in doc["operations"].items()
        for reply in [op["reply"]]
    }
    assert replies == {
        "auth": ["authAnswer", "error"],
        "request": ["answer", "error"],
        "batch": ["batchAnswer", "error"],
        "subscribe": ["error", "update"],
        "unsubscribe": ["error", "update"],
    }
    (correlation,) = doc["components"]["correlationIds"].values()
    assert correlation["location"] == "$message.payload#/id"
    api = ApiDocument(doc)
    for name, message in doc["components"]["messages"].items():
        assert api.node(message["correlationId"]["$ref"].removeprefix("#")) == correlation, name
    # The location names where the answer really carries the request's id.
    pointer = correlation["location"].removeprefix("$message.payload#")
    subscribe = {"type": "subscribe", "id": "s1", "path": "/grommets/1"}
    for frame in ({"id": "r1", "path": "/grommets/1"}, subscribe, {"id": "b1", "path": 1}):
        socket.send(frame)
        answer = await socket.answer()
        assert ApiDocument(answer).node(pointer) == frame["id"], (frame, answer)
