"""Splicing handlers' JSON bytes into one answer, without decoding and re-encoding them."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from carpool.compose.dispatch import SubResponse

_JSON_TYPES: dict[str | None, bool] = {}  # content type: whether JSON (there are a few)
_KNOWN_TYPES = 64  # a handler's own content types, never a client's: still, bounded


def is_json(content_type: str | None) -> bool:
    """Whether a body of this content type is JSON (application/json or any +json)."""
    known = _JSON_TYPES.get(content_type)
    if known is None:
        media = (content_type or "").split(";")[0].strip().lower()
        known = media == "application/json" or media.endswith("+json")
        if len(_JSON_TYPES) < _KNOWN_TYPES:
            _JSON_TYPES[content_type] = known
    return known


def body_value(response: SubResponse) -> bytes:
    """The body as JSON text: the handler's JSON bytes as they are; `null` for an empty body;
    any other body as a JSON string."""
    if not response.body:
        return b"null"
    if is_json(response.content_type):
        return response.body
    return orjson.dumps(response.body.decode("utf-8", "replace"))


def encode_item(item_id: str | None, response: SubResponse) -> bytes:
    """`{"id", "status", "headers", "body"}` for one answered sub-request."""
    return b"".join(
        (
            b'{"id":',
            orjson.dumps(item_id),
            b',"status":',
            str(response.status).encode(),
            b',"headers":',
            orjson.dumps(response.headers),
            b',"body":',
            body_value(response),
            b"}",
        )
    )


def encode_batch(*, committed: bool, items: Sequence[tuple[str, SubResponse]]) -> bytes:
    """The `POST /batch` answer: `{"committed", "responses": [...]}` in request order."""
    responses = b",".join(encode_item(item_id, response) for item_id, response in items)
    committed_text = b"true" if committed else b"false"
    return b'{"committed":' + committed_text + b',"responses":[' + responses + b"]}"
