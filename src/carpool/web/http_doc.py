"""What conditional, idempotent and paged calls add to a route's API description (`Doc`).

Routes use these in their declarations, so that the generated documents say what the pipeline
does for every call: ETags and 304 on reads, 412 on conditional writes, the Idempotency-Key
refusals (409 while running, 422 for another request), `Link` on pages.
"""

from __future__ import annotations

from carpool.web.endpoints import Answer

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
READ_ANSWERS = {304: NOT_MODIFIED}
# 412: If-Match / If-None-Match did not hold; 409: the same Idempotency-Key is still running;
# 422: the Idempotency-Key was used for another request.
CONDITIONAL_WRITE_ERRORS = (409, 412, 422)
IDEMPOTENT_ERRORS = (409, 422)
CONDITIONS = (
    "Send `If-Match` with the ETag you read to write only if nobody changed it meanwhile (412"
    " otherwise; `*` means any current version). Send `Idempotency-Key` to make a retry safe: the"
    " same key and request replays the stored answer (`Idempotent-Replayed: true`), another"
    " request is 422, a call still running with it is 409."
)
IDEMPOTENT = (
    "Send `Idempotency-Key` to make a retry safe: the same key and request replays the stored"
    " answer (`Idempotent-Replayed: true`), another request is 422, a call still running with it"
    " is 409."
)
REVALIDATE = (
    "Every 200 carries a strong `ETag`; send it in `If-None-Match` and an unchanged answer is a"
    " 304 with no body."
)
PAGES = REVALIDATE + ' A page with a next one also says so in `Link: <...?cursor=...>; rel="next"`.'
