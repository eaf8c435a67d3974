"""Re-runs of live answers that failed for a passing reason: tried again until they succeed.

A subscription's re-run that answers 502, 503 or 504 (every connection busy, the database or
an upstream away) read less than its answer depends on, and its last answer may be stale
now. `RerunRetries` schedules it again with backoff (doubling from `first_delay_s` up to
`max_delay_s`) for as long as it fails and lives. Once it has failed for `notice_after_s`,
the failure itself (its 503 problem, with Retry-After) is pushed once, so the client knows
its answer may be stale; the fresh answer follows as soon as a re-run succeeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

S = TypeVar("S", bound=Hashable)
# Answers that say "not now", not "never": the same run may well succeed a moment later.
TRANSIENT = frozenset({502, 503, 504})


def transient(status: int) -> bool:
    """Whether a run answering `status` failed for a passing reason (worth running again)."""
    return status in TRANSIENT


@dataclass(slots=True)
class _Failing:
    since: float
    attempts: int = 0
    noticed: bool = False
    timer: asyncio.TimerHandle | None = field(default=None)


class RerunRetries(Generic[S]):
    """The failing subscriptions of one worker and when each runs again.

    `due(sub)` is what the hub calls to run `sub` again; `failed` and `succeeded` are told
    the outcome of each of its re-runs; `forget` drops a subscription that ended.
    """

    def __init__(
        self,
        due: Callable[[S], None],
        *,
        first_delay_s: float = 0.05,
        max_delay_s: float = 2.0,
        notice_after_s: float = 2.0,
    ) -> None:
        self._due = due
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._notice_after_s = notice_after_s
        self._failing: dict[S, _Failing] = {}
        self.retries = 0  # re-runs scheduled after a failure so far (tests and metrics watch)

    @property
    def failing(self) -> int:
        """Subscriptions whose last re-run failed and that wait for another."""
        return len(self._failing)

    def failed(self, sub: S) -> bool:
        """A re-run of `sub` failed for a passing reason: run it again later. True when the
        failure should be pushed now (it has lasted `notice_after_s`, and was not pushed yet)."""
        now = time.monotonic()
        state = self._failing.get(sub)
        if state is None:
            state = self._failing[sub] = _Failing(since=now)
        if state.timer is not None:
            state.timer.cancel()
        delay = min(self._first_delay_s * 2**state.attempts, self._max_delay_s)
        state.attempts += 1
        self.retries += 1
        state.timer = asyncio.get_running_loop().call_later(delay, self._due, sub)
        if state.noticed or now - state.since < self._notice_after_s:
            return False
        state.noticed = True
        return True

    def succeeded(self, sub: S) -> None:
        """A run of `sub` answered: no retry is pending any more."""
        self.forget(sub)

    def forget(self, sub: S) -> None:
        """`sub` has ended (or succeeded): cancel its pending retry."""
        state = self._failing.pop(sub, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()

    def close(self) -> None:
        """Cancel every pending retry (at shutdown)."""
        for sub in list(self._failing):
            self.forget(sub)
