"""Who may call what, checked in `call_endpoint` for every call: single, batch item or frame.

The caller's identity is established once per outer call (an HTTP request, a socket's
handshake or auth frame) and kept on `request.ctx.identity`; sub-requests inherit it with
the rest of their outer request's context, and may not set `Authorization` themselves.
"""

from __future__ import annotations

from typing import Any, Final

from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.auth.identity import Identity, anonymous
from carpool.auth.rate_limits import RateLimits, Verdict
from carpool.auth.tokens import Identifier
from carpool.errors import RateLimited
from carpool.web.errors import problem_for
from carpool.web.responses import problem_response

AUTHENTICATED: Final = "*"
REALM = 'Bearer realm="carpool"'
UNAUTHORIZED = "urn:carpool:problem:unauthorized"
FORBIDDEN = "urn:carpool:problem:forbidden"


async def identity_of(request: Request) -> Identity:
    """The caller of `request`'s outer call, established from its `Authorization` header once."""
    known: Identity | None = request.ctx.identity
    if known is None:
        identifier: Identifier | None = request.app.ctx.identifier
        if identifier is None:  # an app built without identity: nobody is anybody
            known = anonymous(frozenset())
        else:
            known = await identifier.identify(request.headers.get("authorization"))
        request.ctx.identity = known
    return known


def refusal(identity: Identity, scope: str) -> BaseHTTPResponse | None:
    """The 401 or 403 answer (RFC 6750) for a caller who may not call a route needing `scope`;
    None if they may. `AUTHENTICATED` needs any caller a valid token identified."""
    if identity.token_error is not None:
        return _unauthorized(f"The access token was refused: {identity.token_error}.", invalid=True)
    if identity.expired():
        return _unauthorized("The access token was refused: the token has expired.", invalid=True)
    if scope == AUTHENTICATED:
        if identity.authenticated:
            return None
        return _unauthorized("This route needs a bearer token.", invalid=False)
    if scope in identity.scopes:
        return None
    if not identity.authenticated:
        return _unauthorized(f"This route needs a bearer token with scope {scope}.", invalid=False)
    detail = f"The access token does not grant the scope {scope}."
    challenge = f'{REALM}, error="insufficient_scope", scope="{scope}"'
    return problem_response(403, detail, type_=FORBIDDEN, headers={"www-authenticate": challenge})


def _unauthorized(detail: str, *, invalid: bool) -> BaseHTTPResponse:
    challenge = REALM
    if invalid:
        description = detail.replace('"', "'")
        challenge += f', error="invalid_token", error_description="{description}"'
    return problem_response(
        401, detail, type_=UNAUTHORIZED, headers={"www-authenticate": challenge}
    )


def caller_key(request: Request, identity: Identity) -> str:
    """Whose budget a call is taken from: the token's `sub`, else the client's address."""
    if identity.authenticated and identity.sub is not None:
        return f"sub:{identity.sub}"
    return f"ip:{request.ip or 'unknown'}"


async def charge(request: Request, identity: Identity, cost: int = 1) -> Verdict | None:
    """Take `cost` calls from the caller's budget; None when no RATE_LIMIT is set.

    A verdict that is not `allowed` took nothing.
    """
    limits: RateLimits | None = request.app.ctx.rate_limits
    if limits is None:
        return None
    return await limits.charge(caller_key(request, identity), cost)


async def charge_or_refuse(request: Request, cost: int) -> dict[str, str]:
    """Take `cost` calls (a whole batch) at once, or raise RateLimited (429) taking none.

    The RateLimit headers to answer with, empty when no limit is set.
    """
    verdict = await charge(request, await identity_of(request), cost)
    if verdict is None:
        return {}
    if not verdict.allowed:
        raise RateLimited(_limited_detail(verdict, cost), headers=verdict.headers())
    return verdict.headers()


def _limited_detail(verdict: Verdict, cost: int) -> str:
    calls = "call" if cost == 1 else f"{cost} calls (one per item)"
    return (
        f"Too many requests: this {calls} would pass the limit of {verdict.limit} per"
        f" {verdict.window_s} s ({verdict.remaining} left); retry in {verdict.reset_s} s."
    )


def too_many(verdict: Verdict) -> BaseHTTPResponse:
    """The 429 answer of a call refused by the rate limit (counted in /metrics)."""
    return problem_for(RateLimited(_limited_detail(verdict, 1), headers=verdict.headers()))


def stamp(response: Any, verdict: Verdict | None) -> None:
    """Add the RateLimit headers of `verdict` to an answer."""
    if verdict is not None and response is not None:
        for name, value in verdict.headers().items():
            response.headers[name] = value
