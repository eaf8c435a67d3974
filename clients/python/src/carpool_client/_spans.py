"""Where values sit inside a JSON text, so that a batch item's or a frame's body can be handed
out as the very bytes the server wrote (never decoded and re-encoded)."""

from __future__ import annotations

import json

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _expect(text: str, at: int, char: str) -> int:
    at = _skip(text, at)
    if text[at : at + 1] != char:
        raise ValueError(f"expected {char!r} at {at}")
    return at + 1


def value_end(text: str, start: int) -> int:
    """The index just past the JSON value starting at `start` (after whitespace)."""
    _, end = _DECODER.raw_decode(text, _skip(text, start))
    return end


def members(text: str, start: int) -> dict[str, tuple[int, int]]:
    """The (start, end) span of each member's value of the object at `start`."""
    at = _expect(text, start, "{")
    found: dict[str, tuple[int, int]] = {}
    if text[_skip(text, at)] == "}":
        return found
    while True:
        key, at = _DECODER.raw_decode(text, _skip(text, at))
        at = _skip(text, _expect(text, at, ":"))
        end = value_end(text, at)
        found[key] = (at, end)
        at = _skip(text, end)
        if text[at] == "}":
            return found
        at = _expect(text, at, ",")


def elements(text: str, start: int) -> list[tuple[int, int]]:
    """The (start, end) span of each element of the array at `start`."""
    at = _expect(text, start, "[")
    found: list[tuple[int, int]] = []
    if text[_skip(text, at)] == "]":
        return found
    while True:
        at = _skip(text, at)
        end = value_end(text, at)
        found.append((at, end))
        at = _skip(text, end)
        if text[at] == "]":
            return found
        at = _expect(text, at, ",")


def body_bytes(text: str, span: tuple[int, int] | None) -> bytes:
    """The bytes of a `body` member: empty for a missing one or `null` (no body)."""
    if span is None:
        return b""
    raw = text[span[0] : span[1]]
    return b"" if raw == "null" else raw.encode()


def item_bodies(text: str, start: int = 0) -> list[bytes]:
    """Each item's body bytes of the `POST /batch` answer at `start`, in order."""
    responses = members(text, start).get("responses")
    if responses is None:
        return []
    return [body_bytes(text, members(text, s).get("body")) for s, _ in elements(text, responses[0])]
