"""The AsyncAPI 3 document of an app's WebSocket routes, generated from their declarations."""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from carpool.route_names import template
from carpool.web.endpoints import Endpoint, Message, endpoint_of
from carpool.web.openapi.document import version_of_carpool
from carpool.web.openapi.schemas import Components

_DESCRIPTION = """\
Each text frame is one JSON object. A request frame (`method`, `path`, `body`) runs one
route on a unit of work of its own; a batch frame (`batch`) runs a `POST /batch` body.
Every answer carries the id of its frame, and answers may come out of order; a request
answer's body is the single route's body, byte for byte. A frame that cannot be run is
answered 400 and the socket stays open; a frame over the size limit closes it with 1009.
Each operation names the messages that answer it; every message carries the frame's `id`
as its correlation id (`$message.payload#/id`), so a client pairs requests and answers."""
# Every frame in and out carries its id: the answer (or update) of a frame repeats it.
_CORRELATION = "frameId"
_CORRELATION_ID = {
    "description": "The frame's id: chosen by the client, repeated by every answer to it"
    " (and by each update of a subscription).",
    "location": "$message.payload#/id",
}


def build_asyncapi(app: Sanic[Any, Any]) -> dict[str, Any]:
    """The document describing the frames every declared socket route of `app` takes."""
    components = Components()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for route in app.router.routes:
        declared = endpoint_of(route)
        if declared is None or not declared.websocket:
            continue
        channel = declared.doc.operation_id
        channels[channel] = _channel(declared, route.uri)
        for message in declared.doc.messages:
            messages[message.name] = _message(message, components)
        operations.update(_operations(declared, channel))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "carpool WebSocket",
            "version": version_of_carpool(),
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": dict(sorted(components.schemas.items())),
            "correlationIds": {_CORRELATION: _CORRELATION_ID},
        },
    }


def _channel(declared: Endpoint, uri: str) -> Any:
    return {
        "address": template(uri),
        "title": declared.doc.summary,
        "messages": {
            message.name: {"$ref": f"#/components/messages/{message.name}"}
            for message in declared.doc.messages
        },
    }


def _message(message: Message, components: Components) -> Any:
    return {
        "name": message.name,
        "title": message.summary,
        "summary": message.summary,
        "contentType": "application/json",
        "correlationId": {"$ref": f"#/components/correlationIds/{_CORRELATION}"},
        "payload": components.of(
            message.model, mode="serialization" if message.sent else "validation"
        ),
        "examples": [{"name": message.name, "payload": message.example}],
    }


def _operations(declared: Endpoint, channel: str) -> dict[str, Any]:
    """One operation per frame the server reads, its reply the frames it declares it may be
    answered with (every frame the server sends, for one that declares none)."""
    sent = [message.name for message in declared.doc.messages if message.sent]

    def reply(message: Message) -> list[dict[str, str]]:
        names = message.replies or sent
        return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]

    return {
        f"{channel}_{message.name}": {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": message.summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{message.name}"}],
            "reply": {"channel": {"$ref": f"#/channels/{channel}"}, "messages": reply(message)},
        }
        for message in declared.doc.messages
        if not message.sent
    }
