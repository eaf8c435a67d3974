"""`Idempotency-Key` (IETF httpapi draft): a retried write answers what the first one did.

The key, a fingerprint of the request and the answer are stored in the call's own unit of
work, in the same transaction as its writes (`data/idempotency.py`): a call that committed has
its answer stored, one that rolled back has not (an atomic batch rolled back by an item, a
refused COMMIT, a timeout): its retry runs again, and answers again. A retry with the same
key and request replays the stored status, headers and body bytes without running again; the
same key with another request is 422; a retry while the first still runs is 409.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.data import idempotency as store
from carpool.data.unit_of_work import Work
from carpool.errors import BadRequest
from carpool.web.errors import problem_for
from carpool.web.responses import Response, problem_response

IDEMPOTENCY_KEY = "idempotency-key"
REPLAYED = "idempotent-replayed"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A structured-field string ("...": printable ASCII but `"` and `\`), or a bare token of them.
_CHARS = r"[\x21\x23-\x5b\x5d-\x7e]"
_KEY = re.compile(rf'"((?:{_CHARS}| ){{1,{store.KEY_MAX}}})"|({_CHARS}{{1,{store.KEY_MAX}}})')
# Headers of an answer that describe this transport, not the answer: never stored.
_NOT_STORED = frozenset({"content-type", "content-length", "server-timing", "x-request-id"})
_IN_USE = "urn:carpool:problem:idempotency-key-in-use"
_REUSED = "urn:carpool:problem:idempotency-key-reused"

Run = Callable[[], Awaitable[BaseHTTPResponse]]


@dataclass(frozen=True, slots=True)
class Call:
    """What identifies a request for its key: who, how, where, and with which body."""

    caller: str
    method: str
    target: str  # path and query
    body: bytes

    @classmethod
    def of(cls, request: Request) -> Call:
        """The call a request makes."""
        target = request.path + ("?" + request.query_string if request.query_string else "")
        return cls(caller_of(request), request.method, target, request.body or b"")

    def fingerprint(self) -> str:
        """A hash of everything that makes two requests "the same request"."""
        digest = hashlib.blake2b(digest_size=32)
        for part in (self.caller, self.method, self.target):
            digest.update(part.encode() + b"\0")
        digest.update(self.body)
        return digest.hexdigest()


def caller_of(request: Request) -> str:
    """Whose key it is: the caller's `sub`; for a caller without a token (anonymous scopes),
    their address (`ip:...`), so that anonymous callers neither see nor squat each other's keys.

    A key is only ever replayed to the caller who sent it.
    """
    identity = request.ctx.identity
    subject = str(getattr(identity, "sub", None) or "")
    if not subject or getattr(identity, "token_error", None) is not None:
        subject = f"ip:{getattr(request, 'ip', None) or 'unknown'}"
    if len(subject) <= store.CALLER_MAX:
        return subject
    return "blake2b:" + hashlib.blake2b(subject.encode(), digest_size=32).hexdigest()


def key_of(headers: Mapping[str, str]) -> str | None:
    """The request's Idempotency-Key, or None; BadRequest if it is not a valid one."""
    raw = headers.get(IDEMPOTENCY_KEY)
    if raw is None:
        return None
    match = _KEY.fullmatch(raw.strip())
    if match is None:
        raise BadRequest(
            f"Idempotency-Key must be 1 to {store.KEY_MAX} printable ASCII characters,"
            ' as a quoted string ("...") or bare.'
        )
    return match.group(1) or match.group(2)


async def idempotent(request: Request, work: Work, run: Run, *, ttl_s: float) -> BaseHTTPResponse:
    """`run()`'s answer, stored under the request's Idempotency-Key on `work` if it succeeds;
    or the stored answer of an earlier call with that key; or the key's refusal.

    Without a key, or for a safe method, this is `run()` and costs nothing.
    """
    try:
        key = key_of(request.headers) if request.method in METHODS else None
    except BadRequest as exc:
        return problem_for(exc)
    if key is None:
        return await run()
    call = Call.of(request)
    if not await work.run(store.claim, call.caller, key):
        return _in_use()
    stored = await work.run(store.find, call.caller, key)
    fingerprint = call.fingerprint()
    if stored is not None:
        return _replay(stored) if stored.fingerprint == fingerprint else _reused()
    response = await run()
    # A call that rolls back (an atomic batch whose item failed answers 200 all the same)
    # stores nothing: its transaction may be aborted already, and a retry must run again.
    if response.status < 400 and not work.rolls_back:
        await work.run(store.record, call.caller, key, _stored(fingerprint, response), ttl_s=ttl_s)
    return response


def _stored(fingerprint: str, response: BaseHTTPResponse) -> store.StoredAnswer:
    headers = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in _NOT_STORED
    }
    body = response.body or b""
    return store.StoredAnswer(fingerprint, response.status, headers, response.content_type, body)


def _replay(stored: store.StoredAnswer) -> BaseHTTPResponse:
    return Response(
        stored.body or None,
        status=stored.status,
        headers={**stored.headers, REPLAYED: "true"},
        content_type=stored.content_type,
    )


def _in_use() -> BaseHTTPResponse:
    return problem_response(
        409,
        "A request with this Idempotency-Key is still running; retry once it has answered.",
        type_=_IN_USE,
        headers={"retry-after": "1"},
    )


def _reused() -> BaseHTTPResponse:
    return problem_response(
        422,
        "This Idempotency-Key was used for a different request (method, path, body or caller);"
        " use a new key for a new request.",
        type_=_REUSED,
    )
