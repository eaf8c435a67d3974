"""A call as the links pass it along (method, path, headers, body), tokens, and retry policy."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
NO_BODY: Final[Any] = object()
"""The `json=` of a call that sends no body (None would send JSON `null`)."""

TokenSource = str | Callable[[], str | Awaitable[str]] | None
"""A bearer token: a string, or a callable (sync or async) asked again for every request
and every socket (re)connection, so that it can hand out a refreshed token."""


@dataclass(frozen=True)
class Call:
    """One route call: what a single request, a batch item and a frame all carry."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = NO_BODY

    @property
    def safe(self) -> bool:
        return self.method in SAFE_METHODS

    @property
    def has_body(self) -> bool:
        return self.body is not NO_BODY

    def item(self) -> dict[str, Any]:
        """This call as a full-form batch item, or a request frame (without its id)."""
        item: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.headers:
            item["headers"] = dict(self.headers)
        if self.has_body:
            item["body"] = self.body
        return item


def dumps(value: Any) -> str:
    """Compact JSON; references of transactions (`Ref`) become their `{{id/pointer}}` text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


async def token_of(source: TokenSource) -> str | None:
    """The token to send now."""
    if source is None or isinstance(source, str):
        return source
    value = source()
    if inspect.isawaitable(value):
        value = await value
    return str(value)


def expiry_of(token: str) -> float | None:
    """A JWT's `exp` (read, not verified: the server verifies), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def refresh_delay(token: str, *, now: float | None = None) -> float | None:
    """Seconds until a token should be renewed (at four fifths of what it has left)."""
    exp = expiry_of(token)
    if exp is None:
        return None
    left = exp - (time.time() if now is None else now)
    return max(1.0, left * 0.8)


@dataclass(frozen=True)
class RetryPolicy:
    """How unsafe calls (which carry an `Idempotency-Key`, so a retry cannot write twice) and
    safe ones are retried: on the `statuses` (503 by default) and on network failures, at
    most `attempts` more times, waiting the server's `Retry-After` or else an exponential
    backoff from `backoff_s`, never more than `max_delay_s`."""

    attempts: int = 3
    backoff_s: float = 0.1
    max_delay_s: float = 10.0
    statuses: frozenset[int] = frozenset({503})

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0 for the first)."""
        told = _seconds_of(retry_after)
        wait = self.backoff_s * 2**attempt if told is None else told
        return min(max(wait, 0.0), self.max_delay_s)

    async def wait(self, attempt: int, retry_after: str | None = None) -> None:
        await asyncio.sleep(self.delay(attempt, retry_after))


NO_RETRY = RetryPolicy(attempts=0)


def _seconds_of(retry_after: str | None) -> float | None:
    if not retry_after:
        return None
    try:
        return float(retry_after)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            return None
        return when.timestamp() - time.time()
