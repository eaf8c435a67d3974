"""JSON and problem+json responses, all encoded once, by orjson."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sanic.helpers import has_message_body
from sanic.response import HTTPResponse

from carpool.errors import FieldError

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_OPTIONS = orjson.OPT_UTC_Z


class ProblemFieldError(BaseModel):
    """One invalid input of a problem: a JSON Pointer into the body, or a query parameter."""

    detail: str
    pointer: str | None = Field(None, description="JSON Pointer into the body.")
    parameter: str | None = Field(None, description="The query parameter at fault.")


class Problem(BaseModel):
    """RFC 9457 problem details (application/problem+json), as `problem_response` writes them."""

    type: str
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[ProblemFieldError] | None = Field(
        None, description="Each invalid value (422), at most 50."
    )


# What Sanic strips from every header name and value before sending (header injection).
_STRIPPED = "\r\n\x00"
_STRIP = str.maketrans("", "", _STRIPPED)
_UNSAFE = re.compile(f"[{re.escape(_STRIPPED)}]")


class Response(HTTPResponse):
    """Sanic's HTTPResponse, whose header sanitising costs nothing when there is nothing to
    strip: Sanic translates every header name and value through a table, about 1 µs each,
    a twentieth of a one-row GET's CPU, in a generator calling a method per name and value.
    The same characters go (CR, LF, NUL), in one list (tests/web/test_responses.py)."""

    __slots__ = ()

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        """The headers to send, encoded; `content-type` added if the status has a body."""
        if has_message_body(self.status):  # type: ignore[no-untyped-call]
            self.headers.setdefault("content-type", self.content_type)
        unsafe = _UNSAFE.search
        return iter(
            [
                (
                    (name.translate(_STRIP) if unsafe(name) else name).encode("ascii"),
                    (text.translate(_STRIP) if unsafe(text := f"{value}") else text).encode(
                        errors="surrogateescape"
                    ),
                )
                for name, value in self.headers.items()
            ]
        )


def dumps(value: Any) -> bytes:
    """The project's one JSON encoder (UTC datetimes end in Z)."""
    return orjson.dumps(value, option=_OPTIONS)


def json_response(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """`value` encoded as application/json."""
    return Response(dumps(value), status=status, headers=headers, content_type=JSON)


def empty_response(*, status: int = 204) -> HTTPResponse:
    """A response with no body (204 No Content)."""
    return Response(None, status=status)


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    """An RFC 9457 problem+json response."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [error.as_dict() for error in errors]
    return Response(dumps(body), status=status, headers=headers, content_type=PROBLEM_JSON)
