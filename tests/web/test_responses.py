"""The project's responses: Sanic's, with header sanitising that is free when nothing needs it."""

from __future__ import annotations

import pytest
from sanic.response import HTTPResponse

from carpool.web.responses import Response, json_response, problem_response


@pytest.mark.parametrize(
    "value",
    ["plain", '"etag-like"', "a\r\nSet-Cookie: x=1", "\nlead", "trail\r", "nul\x00byte", ""],
)
def test_headers_are_sanitised_as_sanic_sanitises_them(value: str) -> None:
    # CR, LF and NUL never reach the wire (header injection), exactly as with Sanic's own
    # response; everything else goes as it is.
    ours = dict(Response(b"{}", headers={"x-test": value, f"x{value}": "name"}).processed_headers)
    sanic = dict(
        HTTPResponse(b"{}", headers={"x-test": value, f"x{value}": "name"}).processed_headers
    )
    assert ours == sanic
    sent = [raw for header in ours.items() for raw in header]
    assert all(b"\r" not in raw and b"\n" not in raw and b"\x00" not in raw for raw in sent)


def test_the_project_answers_with_it() -> None:
    assert isinstance(json_response({}), Response)
    assert isinstance(problem_response(400, "no"), Response)


@pytest.mark.parametrize("status", [200, 201, 204, 304, 404])
def test_content_type_goes_out_exactly_when_sanic_would_send_one(status: int) -> None:
    body = None if status in (204, 304) else b"{}"
    ours = Response(body, status=status, content_type="application/json")
    sanic = HTTPResponse(body, status=status, content_type="application/json")
    assert list(ours.processed_headers) == list(sanic.processed_headers)
