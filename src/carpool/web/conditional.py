"""Conditional calls (RFC 9110 section 13): strong ETags, If-None-Match, If-Match.

An ETag is a hash of the answer's body bytes: it costs no query, and any two calls that answer
the same bytes (a single GET, a batch item, a frame, the body a PATCH answers) share it.
`finish_read` stamps it on a successful read and answers 304 when `If-None-Match` matches;
writes evaluate `Preconditions` against the stored representation, inside their transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.errors import PreconditionFailed
from carpool.web.responses import JSON, Response, dumps

ETAG = "etag"
IF_MATCH = "if-match"
IF_NONE_MATCH = "if-none-match"
CONDITIONAL_HEADERS = frozenset(
    {IF_MATCH, IF_NONE_MATCH, "if-modified-since", "if-unmodified-since"}
)
READ_METHODS = frozenset({"GET", "HEAD"})
# A content coding appended to a tag by `web/compression.py` ("abc-gzip"): the same data.
_CODING_SUFFIXES = ("-gzip", "-br")
# Writes whose answer is the target's representation (RFC 9110 section 8.8.3): a PATCH or PUT
# answering 200 and a POST creating 201. (`POST /batch` answers 200: not a representation.)
_REPRESENTED_WRITES = frozenset({("PATCH", 200), ("PUT", 200), ("POST", 201)})
# What a 304 keeps of the 200 it stands for (RFC 9110 section 15.4.5).
_KEPT_BY_304 = frozenset({ETAG, "vary", "cache-control", "content-location", "link"})


def etag_of(body: bytes) -> str:
    """The strong ETag of a body: a quoted 128-bit BLAKE2b hash of its bytes."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_of_value(value: Any) -> str:
    """The ETag of `value` as the app answers it (encoded by `responses.dumps`)."""
    return etag_of(dumps(value))


def _tags(field: str) -> list[str] | None:
    """The entity tags of an If-Match / If-None-Match value; None for `*`."""
    if field.strip() == "*":
        return None
    return [tag.strip() for tag in field.split(",") if tag.strip()]


def _opaque(tag: str, *, weak_allowed: bool) -> str | None:
    """The tag without its quotes and content-coding suffix; None if it may never match."""
    if tag.startswith("W/"):
        if not weak_allowed:
            return None  # If-Match compares strongly: a weak tag never matches
        tag = tag[2:]
    if len(tag) < 2 or not tag.startswith('"') or not tag.endswith('"'):
        return None
    inner = tag[1:-1]
    for suffix in _CODING_SUFFIXES:
        inner = inner.removesuffix(suffix)
    return inner


def _any_matches(field: str, current: str | None, *, weak: bool) -> bool:
    """Whether `field` (If-Match or If-None-Match) matches the current tag (None: no resource)."""
    if current is None:
        return False
    tags = _tags(field)
    if tags is None:
        return True
    wanted = _opaque(current, weak_allowed=True)
    return any(_opaque(tag, weak_allowed=weak) == wanted for tag in tags)


@dataclass(slots=True)
class Preconditions:
    """The If-Match / If-None-Match of one call, evaluated once against the stored state.

    A write that honours them calls `check(current_etag)` inside its transaction, with the
    row locked, before writing. `evaluated` tells the pipeline whether anyone did.
    """

    if_match: str | None = None
    if_none_match: str | None = None
    evaluated: bool = False

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Preconditions:
        """The conditions in a request's headers."""
        return cls(headers.get(IF_MATCH), headers.get(IF_NONE_MATCH))

    @property
    def present(self) -> bool:
        """Whether the call set any condition."""
        return self.if_match is not None or self.if_none_match is not None

    def check(self, current: str | None) -> None:
        """Raise PreconditionFailed unless the conditions hold for the current ETag (None: the
        resource does not exist). If-Match compares strongly, If-None-Match weakly; `*`
        matches any current representation (RFC 9110 sections 13.1.1, 13.1.2)."""
        self.evaluated = True
        if self.if_match is not None and not _any_matches(self.if_match, current, weak=False):
            raise PreconditionFailed(
                "The resource has changed since you read it (If-Match does not match its"
                " current ETag); nothing was done. Read it again and retry."
            )
        if self.if_none_match is not None and _any_matches(self.if_none_match, current, weak=True):
            raise PreconditionFailed(
                "The resource matches If-None-Match (it exists, or has that ETag already);"
                " nothing was done."
            )


def preconditions_of(request: Request) -> Preconditions:
    """The conditions of the call being handled (set by `call_endpoint`)."""
    found = request.ctx.preconditions
    if not isinstance(found, Preconditions):
        found = request.ctx.preconditions = Preconditions.of(request.headers)
    return found


def unevaluated(method: str) -> PreconditionFailed:
    """The refusal of a write sent with conditions its route does not evaluate."""
    return PreconditionFailed(
        f"{method} on this route does not evaluate If-Match or If-None-Match; nothing was done."
        " Conditions apply to PATCH and DELETE of one resource."
    )


def finish_read(
    method: str, headers: Mapping[str, str], response: BaseHTTPResponse
) -> BaseHTTPResponse:
    """A successful read's answer with its ETag, or 304 (no body) if If-None-Match matches.

    Raises PreconditionFailed if If-Match is set and does not match (RFC 9110 section 13.1.1).
    """
    if method not in READ_METHODS or response.status != 200 or not response.body:
        return response
    tag = etag_of(response.body)
    response.headers[ETAG] = tag
    if_match = headers.get(IF_MATCH)
    if if_match is not None:
        Preconditions(if_match=if_match).check(tag)
    condition = headers.get(IF_NONE_MATCH)
    if condition is None or not _any_matches(condition, tag, weak=True):
        return response
    kept = {name: value for name, value in response.headers.items() if name.lower() in _KEPT_BY_304}
    kept[ETAG] = _as_cached(condition, tag)
    return Response(None, status=304, headers=kept)


def _as_cached(condition: str, tag: str) -> str:
    """The tag a 304 repeats: the client's own spelling when it names this representation
    with a content coding (`"…-gzip"`, from a compressed 200), so that its cache entry keeps
    the ETag it had; else the identity tag."""
    wanted = _opaque(tag, weak_allowed=True)
    for sent in _tags(condition) or ():
        strong = sent.removeprefix("W/")
        if strong != tag and _opaque(strong, weak_allowed=False) == wanted:
            return strong
    return tag


def represented(method: str, status: int) -> bool:
    """Whether a write's answer of `status` is the target's representation (and carries its
    ETag when it has a JSON body): PATCH or PUT 200, POST 201."""
    return (method, status) in _REPRESENTED_WRITES


def stamp_written(method: str, response: BaseHTTPResponse) -> BaseHTTPResponse:
    """A write's answer with the ETag of the representation it answers (PATCH 200, POST 201)."""
    written = (method, response.status) in _REPRESENTED_WRITES
    if written and response.body and (response.content_type or "").startswith(JSON):
        response.headers.setdefault(ETAG, etag_of(response.body))
    return response
