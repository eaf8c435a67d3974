"""Per-caller rate limits (the `limits` library): in memory per worker, or shared through Redis.

Every call of a scoped route counts one, whichever way it came (single request, batch item,
frame); a batch pays for all its items at once, before any runs.

When the shared storage (Redis) cannot be reached or does not answer within
`storage_timeout_s`, `on_storage_error` decides: `"allow"` charges the call to this worker's
own in-memory budget instead (as without Redis: one budget per worker), `"refuse"` answers
503 with Retry-After. Either way one WARNING says the outage began and one that it ended;
while it lasts the storage is tried again at most once every `retry_storage_every_s`, so
that a frozen Redis does not slow every call by its timeout.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from carpool.errors import Unavailable

POLICY = "default"
OnStorageError = Literal["allow", "refuse"]
log = logging.getLogger("carpool.rate_limits")


class RateLimitStorageUnavailable(Unavailable):
    """The shared rate-limit storage cannot be reached and the policy is to refuse: a 503."""

    retry_after_s = 1


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

    def __init__(
        self,
        rate: str,
        storage_url: str = "memory://",
        *,
        on_storage_error: OnStorageError = "allow",
        storage_timeout_s: float = 0.5,
        retry_storage_every_s: float = 1.0,
    ) -> None:
        self.item: RateLimitItem = parse(rate)
        self.on_storage_error = on_storage_error
        options: dict[str, float | str | bool] = {}
        if storage_url.startswith("redis"):
            # Bounded: a frozen Redis costs a call at most this long (then the policy holds).
            options = {
                "implementation": "redispy",
                "socket_timeout": storage_timeout_s,
                "socket_connect_timeout": storage_timeout_s,
            }
        storage = storage_from_string(f"async+{storage_url}", **options)
        assert isinstance(storage, Storage)
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._local = MovingWindowRateLimiter(MemoryStorage())  # used only during an outage
        self._retry_every_s = retry_storage_every_s
        self._outage_since: float | None = None  # monotonic time the storage went away
        self._next_try = 0.0

    @property
    def storage_reachable(self) -> bool:
        """Whether the last use of the storage worked (False during an outage)."""
        return self._outage_since is None

    async def charge(self, key: str, cost: int = 1) -> Verdict:
        """Take `cost` calls from `key`'s budget, all or none.

        During a storage outage: this worker's own budget (`allow`), or
        RateLimitStorageUnavailable (`refuse`).
        """
        if self._outage_since is None or time.monotonic() >= self._next_try:
            try:
                verdict = await self._charge(self._limiter, key, cost)
            except Exception as exc:  # whatever the client raises: the storage is not there
                self._went_away(exc)
            else:
                self._came_back()
                return verdict
        if self.on_storage_error == "refuse":
            raise RateLimitStorageUnavailable(
                "The rate-limit storage cannot be reached right now; nothing was done."
                " Retry after the delay in Retry-After."
            )
        return await self._charge(self._local, key, cost)

    async def check(self) -> bool:
        """Whether the storage answers now (readiness); updates the outage state."""
        try:
            reachable = bool(await self._storage.check())
        except Exception as exc:
            self._went_away(exc)
            return False
        if reachable:
            self._came_back()
        else:
            self._went_away(ConnectionError("no answer to PING"))
        return reachable

    async def _charge(self, limiter: MovingWindowRateLimiter, key: str, cost: int) -> Verdict:
        allowed = cost <= self.item.amount and await limiter.hit(self.item, key, cost=cost)
        stats = await limiter.get_window_stats(self.item, key)
        reset_s = max(0, math.ceil(stats.reset_time - time.time()))
        window_s = self.item.get_expiry()
        return Verdict(allowed, self.item.amount, max(0, stats.remaining), reset_s, window_s)

    def _went_away(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._next_try = now + self._retry_every_s
        if self._outage_since is None:
            self._outage_since = now
            policy = (
                "calls are refused (503)"
                if self.on_storage_error == "refuse"
                else "each worker counts its own budget meanwhile"
            )
            log.warning(
                "rate-limit storage unreachable (%s: %s); %s", type(exc).__name__, exc, policy
            )

    def _came_back(self) -> None:
        if self._outage_since is not None:
            lasted = time.monotonic() - self._outage_since
            self._outage_since = None
            log.warning("rate-limit storage reachable again after %.1f s", lasted)

    async def reset(self) -> None:
        """Forget every budget (tests)."""
        await self._storage.reset()
