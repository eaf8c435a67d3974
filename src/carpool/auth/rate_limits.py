"""Per-caller rate limits (the `limits` library): in memory per worker, or shared through Redis.

Every call of a scoped route counts one, whichever way it came (single request, batch item,
frame); a batch pays for all its items at once, before any runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

POLICY = "default"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a charge was allowed, and the IETF RateLimit headers that describe the budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    window_s: int

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), plus
        `Retry-After` when refused."""
        headers = {
            "ratelimit-policy": f'"{POLICY}";q={self.limit};w={self.window_s}',
            "ratelimit": f'"{POLICY}";r={self.remaining};t={self.reset_s}',
        }
        if not self.allowed:
            headers["retry-after"] = str(max(self.reset_s, 1))
        return headers


class RateLimits:
    """`rate` (e.g. "1200/minute") per caller key, kept in `storage_url` (memory:// or redis://)."""

    def __init__(self, rate: str, storage_url: str = "memory://") -> None:
        self.item: RateLimitItem = parse(rate)
        options = {"implementation": "redispy"} if storage_url.startswith("redis") else {}
        storage = storage_from_string(f"async+{storage_url}", **options)
        assert isinstance(storage, Storage)
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def charge(self, key: str, cost: int = 1) -> Verdict:
        """Take `cost` calls from `key`'s budget, all or none."""
        allowed = cost <= self.item.amount and await self._limiter.hit(self.item, key, cost=cost)
        stats = await self._limiter.get_window_stats(self.item, key)
        reset_s = max(0, math.ceil(stats.reset_time - time.time()))
        window_s = self.item.get_expiry()
        return Verdict(allowed, self.item.amount, max(0, stats.remaining), reset_s, window_s)

    async def reset(self) -> None:
        """Forget every budget (tests)."""
        await self._storage.reset()
