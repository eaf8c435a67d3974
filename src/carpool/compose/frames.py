"""WebSocket frames of `/ws`: request and batch frames in, id-tagged answers out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from carpool.compose.dispatch import SubRequest
from carpool.compose.envelope import METHODS, SubRequestFields
from carpool.errors import FieldError
from carpool.web.inputs import JSON_MAX_DEPTH_DEFAULT, depth_exceeds, field_errors

BAD_FRAME = "urn:carpool:problem:bad-frame"
FrameId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class BadFrame(Exception):
    """A frame that cannot be run; answered with a 400 error frame carrying its id, if any."""

    def __init__(
        self, detail: str, *, frame_id: str | None, errors: tuple[FieldError, ...] = ()
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.frame_id = frame_id
        self.errors = errors


@dataclass(frozen=True, slots=True)
class RequestFrame:
    """One request to run on its own unit of work."""

    id: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None

    def subrequest(self) -> SubRequest:
        """The request as the dispatcher runs it."""
        return SubRequest(self.method, self.path, self.headers, self.body)


@dataclass(frozen=True, slots=True)
class BatchFrame:
    """A `POST /batch` body (still unvalidated) to run on one unit of work."""

    id: str
    batch: Any


class _Request(SubRequestFields):
    id: FrameId


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: FrameId
    batch: Any


def parse_frame(
    payload: str | bytes, *, max_depth: int = JSON_MAX_DEPTH_DEFAULT
) -> RequestFrame | BatchFrame:
    """A text frame's JSON as a request or a batch frame; BadFrame if it is neither.

    A request frame's body may nest `max_depth` levels (JSON_MAX_DEPTH), as a single
    request's may; a batch frame's items are held to it one by one, as `POST /batch`'s are.
    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadFrame(f"The frame is not valid JSON: {exc}", frame_id=None) from None
    if not isinstance(data, dict):
        raise BadFrame("A frame must be a JSON object.", frame_id=None)
    frame_id = data.get("id") if isinstance(data.get("id"), str) else None
    if "batch" not in data and depth_exceeds(data, max_depth + 1):
        error = FieldError(f"the JSON is nested deeper than {max_depth} levels", pointer="/body")
        raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=(error,))
    try:
        if "batch" in data:
            batch = _Batch.model_validate(data)
            return BatchFrame(batch.id, batch.batch)
        request = _Request.model_validate(data)
    except ValidationError as exc:
        errors = tuple(field_errors(exc))
        raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=errors) from None
    if request.method not in METHODS:
        error = FieldError(f"unknown method {request.method!r}", pointer="/method")
        raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=(error,))
    body = orjson.dumps(request.body) if "body" in request.model_fields_set else None
    return RequestFrame(request.id, request.method, request.path, request.headers, body)


def encode_answer(frame_id: str | None, status: int, body: bytes) -> bytes:
    """`{"id", "status", "body"}` with `body` (JSON text) spliced in as it is."""
    return b"".join(
        (
            b'{"id":',
            orjson.dumps(frame_id),
            b',"status":',
            str(status).encode(),
            b',"body":',
            body,
            b"}",
        )
    )
