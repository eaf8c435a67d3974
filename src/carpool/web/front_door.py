"""The ASGI edge every outer call passes before Sanic sees it: CORS, security headers, and the
WebSocket handshake (Origin, token, sockets per caller or, without a token, per address),
refused before it is accepted, each refusal logged as one JSON line (`refusals.py`).

Only transport concerns live here; what must hold for every call, batch items and frames
included (scopes, rate limits), is checked in `call_endpoint`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from carpool.auth.identity import Identity
from carpool.auth.tokens import Identifier
from carpool.web.access import REALM, UNAUTHORIZED
from carpool.web.compression import decoded
from carpool.web.cors import CorsPolicy, Headers
from carpool.web.refusals import RefusalLog
from carpool.web.responses import problem_response

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

FOREIGN_ORIGIN = "urn:carpool:problem:foreign-origin"
TOO_MANY_SOCKETS = "urn:carpool:problem:too-many-sockets"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_CSP = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self';"
    " form-action 'self'; frame-ancestors 'self'"
)


class CallerSockets:
    """How many sockets each caller (`sub`) has open in this worker, at most `limit` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def enter(self, sub: str) -> bool:
        """Count one more socket of `sub`; False (nothing counted) if it has `limit` already."""
        if self._open[sub] >= self.limit:
            return False
        self._open[sub] += 1
        return True

    def leave(self, sub: str) -> None:
        """One socket of `sub` has ended."""
        self._open[sub] -= 1
        if self._open[sub] <= 0:
            del self._open[sub]


class FrontDoor:
    """Wraps the app's ASGI callable; see the module's docstring."""

    def __init__(
        self,
        cors: CorsPolicy,
        sockets: CallerSockets,
        identifier: Callable[[], Identifier | None],
        *,
        anonymous: CallerSockets | None = None,
    ) -> None:
        self._cors = cors
        self._sockets = sockets
        self._identifier = identifier
        # Sockets opened without a token, per client address (whatever they do afterwards).
        self._anonymous = anonymous or CallerSockets(16)
        self._refusals = RefusalLog()

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Receive, send: Send, app: AsgiApp
    ) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send, app)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send, app)
        else:
            await app(scope, receive, send)

    async def _http(
        self, scope: MutableMapping[str, Any], receive: Receive, send: Send, app: AsgiApp
    ) -> None:
        headers = _headers(scope)
        origin = headers.get("origin")
        allowed = origin is not None and self._cors.allows(origin)
        if allowed and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            assert origin is not None
            extra = [*self._cors.preflight(origin), *_always(self._cors)]
            await send({"type": "http.response.start", "status": 204, "headers": extra})
            await send({"type": "http.response.body", "body": b""})
            return
        added = _always(self._cors)
        if allowed:
            assert origin is not None
            added += self._cors.answer(origin)
        await app(
            scope, receive, _stamping(send, added, private=bool(headers.get("authorization")))
        )

    async def _websocket(
        self, scope: MutableMapping[str, Any], receive: Receive, send: Send, app: AsgiApp
    ) -> None:
        headers = _headers(scope)
        origin = headers.get("origin")
        if not self._socket_origin_allowed(origin, headers.get("host"), scope.get("scheme")):
            detail = f"WebSocket connections from the origin {origin} are refused."
            await _refuse(self._refusals, scope, receive, send, 403, detail, type_=FOREIGN_ORIGIN)
            return
        identity = await self._identify(headers.get("authorization"))
        if identity is not None and identity.token_error is not None:
            detail = f"The access token was refused: {identity.token_error}."
            challenge = f'{REALM}, error="invalid_token"'
            await _refuse(
                self._refusals,
                scope,
                receive,
                send,
                401,
                detail,
                type_=UNAUTHORIZED,
                challenge=challenge,
            )
            return
        sub = identity.sub if identity is not None and identity.authenticated else None
        counted, key = (
            (self._sockets, sub) if sub is not None else (self._anonymous, _address(scope))
        )
        if not counted.enter(key):
            who = "This caller" if sub is not None else "This address, without a token,"
            detail = f"{who} has {counted.limit} sockets open already."
            await _refuse(self._refusals, scope, receive, send, 429, detail, type_=TOO_MANY_SOCKETS)
            return
        try:
            await app(scope, receive, send)
        finally:
            counted.leave(key)

    def _socket_origin_allowed(
        self, origin: str | None, host: str | None, scheme: str | None
    ) -> bool:
        """No Origin (not a browser), the server's own origin (host and scheme: an `https`
        page for `wss`, `http` for `ws`), or a listed origin."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        own_scheme = "https" if scheme == "wss" else "http"
        if host is not None and parts.netloc.lower() == host.lower():
            if parts.scheme.lower() == own_scheme:
                return True
        return self._cors.allows(origin)

    async def _identify(self, authorization: str | None) -> Identity | None:
        identifier = self._identifier()
        if authorization is None or identifier is None:
            return None
        return await identifier.identify(authorization)


def _address(scope: MutableMapping[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _headers(scope: MutableMapping[str, Any]) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }


def _always(cors: CorsPolicy) -> Headers:
    headers = [(b"x-content-type-options", b"nosniff")]
    if cors.enabled:  # the answer depends on Origin: caches must keep them apart
        headers.append((b"vary", b"Origin"))
    return headers


def _stamping(send: Send, added: Headers, *, private: bool) -> Send:
    """`send`, adding `added` to the answer's headers, `Cache-Control: no-store` to answers
    of requests that carried credentials, and a Content-Security-Policy to HTML pages."""
    held: Message | None = None

    async def stamped(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            headers, html = _stamped_headers(
                list(message.get("headers", [])), added, private=private
            )
            message = {**message, "headers": headers}
            if html:
                held = message  # its policy lists the page's inline scripts: wait for the body
                return
        elif held is not None and message["type"] == "http.response.body":
            start, held = held, None
            coding = next(
                (v for n, v in start["headers"] if n.lower() == b"content-encoding"), None
            )
            page = decoded(bytes(message.get("body", b"")), coding)  # compressed by then
            policy = _content_security_policy(page)
            start["headers"].append((b"content-security-policy", policy.encode()))
            await send(start)
        await send(message)

    return stamped


def _merged(headers: Headers, added: Headers) -> Headers:
    """`headers` with `added` where they are missing; `Vary` values are joined, not replaced."""
    return _stamped_headers(headers, added, private=False)[0]


def _stamped_headers(headers: Headers, added: Headers, *, private: bool) -> tuple[Headers, bool]:
    """`headers` with `added` where they are missing (`Vary` values are joined, not replaced)
    and `Cache-Control: no-store` if `private` and none is set; and whether the answer is an
    HTML page. One pass over the answer's headers: this runs for every answer."""
    present: dict[bytes, int] = {}
    html = False
    for index, (name, value) in enumerate(headers):
        lowered = name.lower()
        present[lowered] = index
        if lowered == b"content-type" and value.startswith(b"text/html"):
            html = True
    for name, value in added:
        if name not in present:
            headers.append((name, value))
        elif name == b"vary":
            index = present[name]
            headers[index] = (headers[index][0], headers[index][1] + b", " + value)
    if private and b"cache-control" not in present and all(n != b"cache-control" for n, _ in added):
        headers.append((b"cache-control", b"no-store"))
    return headers, html


def _content_security_policy(page: bytes) -> str:
    """Only the page's own origin, and the inline scripts the page itself holds (by hash)."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return _CSP.format(hashes=hashes)


async def _refuse(
    refusals: RefusalLog,
    scope: MutableMapping[str, Any],
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    *,
    type_: str,
    challenge: str | None = None,
) -> None:
    """Refuse a WebSocket handshake before accepting it: an HTTP problem answer if the server
    can send one (ASGI's websocket.http.response extension), else a close (HTTP 403); and
    one line in `refusals`' log."""
    refusals.refused(status, type_, _address(scope))
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    problem = problem_response(status, detail, type_=type_)
    headers: Headers = [
        (b"content-type", b"application/problem+json"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode()))
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": problem.body})
