"""The HTTP link: one call as one plain request, with its token and its retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from carpool_client._calls import Call, RetryPolicy, TokenSource, dumps, token_of
from carpool_client._response import Response


class HttpLink:
    """Sends calls as plain HTTP requests over one httpx client (one connection pool).

    Every request carries the token the source gives at that moment. A call answered with
    one of the policy's statuses, or lost to a network failure, is sent again (an unsafe
    call carries an `Idempotency-Key` from the client, so the server replays rather than
    writes twice).
    """

    def __init__(self, http: httpx.AsyncClient, token: TokenSource, retry: RetryPolicy) -> None:
        self.http = http
        self._token = token
        self._retry = retry

    async def send(self, call: Call) -> Response:
        """The answer to `call`, after the retries the policy allows."""
        content = dumps(call.body).encode() if call.has_body else None
        answer = await self.exchange(call.method, call.path, call.headers, content)
        return Response(
            answer.status_code, dict(answer.headers), answer.content, call.method, call.path
        )

    async def exchange(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        content: bytes | None,
    ) -> httpx.Response:
        """One request, retried as the policy says; the last answer (or network error).

        An unsafe request must carry an `Idempotency-Key` in `headers`: a lost answer is
        resent with it, and the server replays rather than writes twice.
        """
        attempt = 0
        while True:
            sent = await self._headers(headers, content is not None)
            try:
                answer = await self.http.request(method, path, headers=sent, content=content)
            except httpx.TransportError:
                if attempt >= self._retry.attempts:
                    raise
            else:
                if answer.status_code not in self._retry.statuses or (
                    attempt >= self._retry.attempts
                ):
                    return answer
                await answer.aclose()
                await self._retry.wait(attempt, answer.headers.get("retry-after"))
                attempt += 1
                continue
            await self._retry.wait(attempt)
            attempt += 1

    async def _headers(self, headers: Mapping[str, str], has_body: bool) -> dict[str, Any]:
        sent = dict(headers)
        token = await token_of(self._token)
        if token is not None and not any(k.lower() == "authorization" for k in sent):
            sent["authorization"] = f"Bearer {token}"
        if has_body:
            sent.setdefault("content-type", "application/json")
        return sent
