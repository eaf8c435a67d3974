"""Parsing `/ws` frames: every input is either a frame or a BadFrame that names its id."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from carpool.compose.envelope import METHODS
from carpool.compose.frames import (
    BadFrame,
    BatchFrame,
    RequestFrame,
    RequestFrameIn,
    encode_answer,
    parse_frame,
)
from carpool.web.inputs import field_errors

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
frame_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "method": st.sampled_from(["GET", "post", "BREW", 3]),
        "path": st.sampled_from(["/grommets", "grommets", "", 5]),
        "headers": json_values,
        "body": json_values,
        "batch": json_values,
        "extra": json_values,
    },
)


@given(st.one_of(json_values, frame_like))
def test_any_json_is_a_frame_or_a_bad_frame_carrying_its_string_id(value: Any) -> None:
    try:
        frame = parse_frame(orjson.dumps(value).decode())
    except BadFrame as exc:
        given_id = value.get("id") if isinstance(value, dict) else None
        assert exc.frame_id == (given_id if isinstance(given_id, str) else None)
        return
    assert isinstance(value, dict) and isinstance(value["id"], str) and value["id"]
    assert "extra" not in value
    if isinstance(frame, BatchFrame):
        assert frame.batch == value["batch"]
    else:
        assert isinstance(frame, RequestFrame)
        assert frame.path == value["path"] and frame.path.startswith("/")


def test_a_request_frame_keeps_its_body_as_json_bytes_and_defaults_to_get() -> None:
    frame = parse_frame('{"id": "1", "path": "/grommets", "body": {"a": [1, null]}}')
    assert frame == RequestFrame("1", "GET", "/grommets", {}, b'{"a":[1,null]}')
    without = parse_frame('{"id": "1", "method": "delete", "path": "/grommets/1"}')
    assert isinstance(without, RequestFrame)
    assert (without.method, without.body) == ("DELETE", None)


def test_a_null_body_is_still_a_body() -> None:
    frame = parse_frame('{"id": "1", "method": "POST", "path": "/grommets", "body": null}')
    assert isinstance(frame, RequestFrame) and frame.body == b"null"


@pytest.mark.parametrize("payload", ["{nope", "", "[]", "1", '"x"', "null"])
def test_what_is_not_a_json_object_is_a_bad_frame_without_id(payload: str) -> None:
    with pytest.raises(BadFrame) as bad:
        parse_frame(payload)
    assert bad.value.frame_id is None


def test_an_answer_splices_the_body_bytes_as_they_are() -> None:
    body = b'{"z": 1,  "a": 2}'
    assert encode_answer("7", 200, body) == b'{"id":"7","status":200,"body":' + body + b"}"
    assert orjson.loads(encode_answer(None, 400, b"{}")) == {"id": None, "status": 400, "body": {}}


def _by_the_model(value: dict[str, Any]) -> RequestFrame | str:
    """What the frame model makes of a request frame: the frame, or the error pointers."""
    try:
        request = RequestFrameIn.model_validate(value)
    except ValidationError as exc:
        return " ".join(sorted(error.pointer or "" for error in field_errors(exc)))
    if request.method not in METHODS:
        return "/method"
    return RequestFrame(request.id, request.method, request.path, request.headers, None)


def _by_parse_frame(value: dict[str, Any]) -> RequestFrame | str:
    try:
        frame = parse_frame(orjson.dumps(value).decode())
    except BadFrame as exc:
        return " ".join(sorted(error.pointer or "" for error in exc.errors))
    assert isinstance(frame, RequestFrame)
    return frame


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.text(max_size=3), st.just("x" * 200), st.just("x" * 201), st.none()),
            "method": st.sampled_from(["GET", "get", "Patch", "BREW", "", 3]),
            "path": st.one_of(
                st.sampled_from(["/grommets/1", "grommets", "", "/"]),
                st.just("/" + "a" * 8191),
                st.just("/" + "a" * 8192),
            ),
        },
    )
)
def test_plain_request_frames_read_without_the_model_read_as_the_model_reads_them(
    value: dict[str, Any],
) -> None:
    # `{"id", "method", "path"}` frames skip the model (the common frame, read faster): what
    # they become, or the errors they are refused with, must be the model's own.
    assert _by_parse_frame(value) == _by_the_model(value)
