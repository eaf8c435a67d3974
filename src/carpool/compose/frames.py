"""WebSocket frames of `/ws`: request, batch and typed frames in, id-tagged answers out;
and the models of each frame, whose JSON Schemas the socket's AsyncAPI description shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from carpool.compose.dispatch import SubRequest
from carpool.compose.envelope import (
    MAX_PATH,
    METHODS,
    BatchAnswer,
    BatchItemAnswer,
    BatchRequest,
    SubRequestFields,
)
from carpool.compose.multiplex import payload_size
from carpool.errors import FieldError
from carpool.web.inputs import JSON_MAX_DEPTH_DEFAULT, depth_exceeds, field_errors
from carpool.web.responses import Problem

BAD_FRAME = "urn:carpool:problem:bad-frame"
_MAX_FRAME_ID = 200
FrameId = Annotated[str, StringConstraints(min_length=1, max_length=_MAX_FRAME_ID)]


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
    # The frame's size: the client's body was no larger (not part of what the frame says).
    sent_size: int | None = field(default=None, compare=False)

    def subrequest(self) -> SubRequest:
        """The request as the dispatcher runs it."""
        return SubRequest(self.method, self.path, self.headers, self.body, self.sent_size)


@dataclass(frozen=True, slots=True)
class BatchFrame:
    """A `POST /batch` body (still unvalidated) to run on one unit of work."""

    id: str
    batch: Any


@dataclass(frozen=True, slots=True)
class TypedFrame:
    """A frame with a `"type"` (subscribe, unsubscribe, ...): read by the handler of its type."""

    type: str
    id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuthFrame:
    """`{"type": "auth", "token": ...}`: who the socket's caller is from now on."""

    id: str | None
    token: str


class AuthFrameIn(BaseModel):
    """An auth frame: the bearer token of the socket's caller, from now on (browsers cannot
    set the handshake's Authorization header; also renews an expiring token)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: str = Field(pattern="^auth$")
    id: FrameId | None = None
    token: Annotated[str, StringConstraints(min_length=1, max_length=16_384)]


class AuthAccepted(BaseModel):
    """Who the socket's caller now is."""

    sub: str
    scope: str = Field(description="The token's scopes, space-separated.")
    exp: float = Field(description="When the token expires (seconds since the epoch).")


class AuthFrameOut(BaseModel):
    """The answer of an auth frame: 200 with the caller, or a 401/403/429 problem."""

    type: str = Field(pattern="^auth$")
    id: str | None
    status: int = Field(ge=200, le=599)
    body: AuthAccepted | Problem


class RequestFrameIn(SubRequestFields):
    """A request frame: one route, run on a unit of work of its own."""

    id: FrameId


class BatchFrameIn(BaseModel):
    """A batch frame: a `POST /batch` body, run as `POST /batch` runs it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: FrameId
    batch: Any  # validated by the batch itself, so that its errors read as the batch's


class BatchFrameInDescribed(BatchFrameIn):
    """A batch frame, as the AsyncAPI description shows it: `batch` is a `POST /batch` body."""

    batch: BatchRequest


class RequestFrameOut(BatchItemAnswer):
    """The answer of a request frame: its body is the single route's body, byte for byte."""


class BatchFrameOut(BaseModel):
    """The answer of a batch frame: the `POST /batch` answer, or its problem."""

    id: str
    status: int = Field(ge=200, le=599)
    headers: dict[str, str] | None = Field(
        default=None, description="Retry-After and the RateLimit budget, when the batch has them."
    )
    body: BatchAnswer | Problem


class ErrorFrameOut(BaseModel):
    """The answer to a frame that cannot be run (not JSON, unknown keys, no path): 400."""

    id: str | None = Field(description="The frame's id if it had one, else null.")
    status: int = Field(ge=400, le=599)
    body: Problem


def parse_frame(
    payload: str | bytes, *, max_depth: int = JSON_MAX_DEPTH_DEFAULT
) -> RequestFrame | BatchFrame | TypedFrame:
    """A text frame's JSON as a request, batch or typed frame; BadFrame if it is none of them.

    A request frame's body may nest `max_depth` levels (JSON_MAX_DEPTH), as a single
    request's may; a batch frame's items are held to it one by one, as `POST /batch`'s are.
    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadFrame(f"The frame is not valid JSON: {exc}", frame_id=None) from None
    if not isinstance(data, dict):
        raise BadFrame("A frame must be a JSON object.", frame_id=None)
    plain = _plain_request(data)
    if plain is not None:
        return plain
    frame_id = data.get("id") if isinstance(data.get("id"), str) else None
    if "batch" not in data and depth_exceeds(data, max_depth + 1):
        error = FieldError(f"the JSON is nested deeper than {max_depth} levels", pointer="/body")
        raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=(error,))
    if "type" in data:
        if not isinstance(data["type"], str):
            error = FieldError("the type must be a string", pointer="/type")
            raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=(error,))
        return TypedFrame(data["type"], frame_id, data)
    try:
        if "batch" in data:
            batch = BatchFrameIn.model_validate(data)
            return BatchFrame(batch.id, batch.batch)
        request = RequestFrameIn.model_validate(data)
    except ValidationError as exc:
        errors = tuple(field_errors(exc))
        raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=errors) from None
    if request.method not in METHODS:
        error = FieldError(f"unknown method {request.method!r}", pointer="/method")
        raise BadFrame("The frame is invalid.", frame_id=frame_id, errors=(error,))
    body = orjson.dumps(request.body) if "body" in request.model_fields_set else None
    sent = payload_size(payload) if body is not None else None
    return RequestFrame(request.id, request.method, request.path, request.headers, body, sent)


_PLAIN_KEYS = frozenset({"id", "method", "path"})


def _plain_request(data: dict[str, Any]) -> RequestFrame | None:
    """The most common frame, `{"id", "method"?, "path"}` with valid values, read without the
    model (its validation was most of reading a frame); None for anything else, which the
    model then reads."""
    frame_id, path, method = data.get("id"), data.get("path"), data.get("method", "GET")
    if type(frame_id) is not str or type(path) is not str or type(method) is not str:
        return None
    if not data.keys() <= _PLAIN_KEYS or not path.startswith("/") or len(path) > MAX_PATH:
        return None
    method = method.upper()
    if not 0 < len(frame_id) <= _MAX_FRAME_ID or method not in METHODS:
        return None
    return RequestFrame(frame_id, method, path, {}, None)


def auth_frame(frame: TypedFrame) -> AuthFrame:
    """A typed frame of type `auth` as an AuthFrame; BadFrame if it is not a valid one."""
    try:
        auth = AuthFrameIn.model_validate(frame.data)
    except ValidationError as exc:
        errors = tuple(field_errors(exc))
        raise BadFrame("The frame is invalid.", frame_id=frame.id, errors=errors) from None
    return AuthFrame(auth.id, auth.token)


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
