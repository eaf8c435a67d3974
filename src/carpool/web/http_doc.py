"""What the call pipeline does for every call, as the API description says it.

Derived from a route's declaration (method, unit of work, scope, `Doc.conditions`), never
typed per route: ETags and 304 on reads, ETags on the writes that answer a representation,
412 wherever If-Match / If-None-Match may be refused, the Idempotency-Key refusals (409
while running, 422 for another request) on unsafe calls that run on a unit of work, and the
prose that says how to use them. `pipeline_statuses` is the list a test holds each
generated operation to.
"""

from __future__ import annotations

from carpool.web import conditional
from carpool.web.endpoints import AUTHENTICATED, PUBLIC, Answer, Endpoint
from carpool.web.idempotency import METHODS as IDEMPOTENT_METHODS
from carpool.web.unit_scope import SAFE_METHODS

ETAG = {
    "etag": "Strong ETag of this body (a hash of its bytes); send it back in If-None-Match to"
    " revalidate, or in If-Match to write only if nothing changed."
}
# Headers an answer carries only sometimes (`Link` on a page with a next one,
# `Idempotent-Replayed` on a replay) are said in the operation's description: an answer's
# documented headers are the ones it always carries.
NOT_MODIFIED = Answer(
    "Not modified: If-None-Match matched the current ETag. No body; the ETag is repeated.",
    headers=ETAG,
)
IDEMPOTENT_ERRORS = (409, 422)
IDEMPOTENT = (
    "Send `Idempotency-Key` to make a retry safe: the same key and request replays the stored"
    " answer (`Idempotent-Replayed: true`), another request is 422, a call still running with it"
    " is 409."
)
CONDITIONS = (
    "Send `If-Match` with the ETag you read to write only if nobody changed it meanwhile (412"
    " otherwise; `*` means any current version). " + IDEMPOTENT
)
REVALIDATE = (
    "Every 200 carries a strong `ETag`; send it in `If-None-Match` and an unchanged answer is a"
    " 304 with no body."
)


def _read(declared: Endpoint, method: str) -> bool:
    """A read the pipeline finishes (`conditional.finish_read`): ETag, 304, If-Match."""
    return method in conditional.READ_METHODS and not declared.websocket


def idempotent(declared: Endpoint, method: str) -> bool:
    """Whether an Idempotency-Key is honoured (an unsafe call on a unit of work)."""
    return declared.unit and method in IDEMPOTENT_METHODS and not declared.websocket


def answers(declared: Endpoint, method: str) -> dict[int, Answer]:
    """The route's success answers, with the headers the pipeline adds and the 304 of a read."""
    found: dict[int, Answer] = {}
    for status, answer in declared.doc.answers.items():
        has_body = answer.model is not None or answer.example is not None
        tagged = _read(declared, method) and status == 200
        tagged = tagged or conditional.represented(method, status)
        if tagged and has_body:
            answer = Answer(
                answer.description,
                answer.model,
                answer.example,
                {**answer.headers, **ETAG},
                answer.media_type,
            )
        found[status] = answer
    if _read(declared, method) and 200 in found:
        found[304] = NOT_MODIFIED
    return found


def pipeline_statuses(declared: Endpoint, method: str) -> set[int]:
    """The error statuses the pipeline itself may answer for `method` on the route, whatever
    its handler does: refused conditions, idempotency keys, identity, scope, budget, the
    database."""
    statuses: set[int] = set()
    if not declared.websocket and (_read(declared, method) or method not in SAFE_METHODS):
        statuses.add(412)  # If-Match that does not hold, or conditions the route ignores
    if idempotent(declared, method):
        statuses.update(IDEMPOTENT_ERRORS)
    if declared.scope is not PUBLIC and not declared.websocket:
        statuses.update((401, 429))  # every item and frame counts against the budget too
        if declared.scope != AUTHENTICATED:
            statuses.add(403)
    if declared.unit:
        statuses.add(503)  # the database unreachable, or no connection free in time
        if method not in SAFE_METHODS:
            statuses.add(409)  # a refused COMMIT (a lost race is 409; else 503)
    return statuses


def description(declared: Endpoint, method: str) -> str | None:
    """The operation's description: what the pipeline offers it, then its own words."""
    said = [REVALIDATE] if _read(declared, method) else []
    if declared.doc.conditions:
        said.append(CONDITIONS)
    elif idempotent(declared, method):
        said.append(IDEMPOTENT)
    own = declared.doc.description
    if own:
        said = [text for text in said if text not in own]  # a route may say it in its words
        said.append(own)
    return " ".join(said) or None
