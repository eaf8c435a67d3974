"""Live answers, worker side: every subscription of this worker, re-run when committed changes
touch what it read.

A subscription is a GET route kept open on a socket. Each run of it records its footprint
(the tables and keys its loaders and queries read); a burst of committed changes (from the
worker's LISTEN connection) re-runs only the subscriptions whose footprint it touches, all
together on one fresh read-only unit of work through the same dispatcher as every call, so
their lookups coalesce and each answer is byte for byte the single GET's. Runs of one
subscription never overlap: changes that arrive while it runs are checked against what the
run read, and re-run it once more if they matter, so the last answer is never stale.

Every run is a call of its subscriber's: charged to their rate-limit budget like the GET it
runs (a 429 ends the subscription, `Retry-After` in its update). Subscriptions of one caller
to the same path are identical: a round runs them once and hands each the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sanic.request import Request

from carpool.compose.dispatch import SubRequest, SubResponse, dispatch_subrequest
from carpool.compose.live_retry import RerunRetries, transient
from carpool.data.changes import Change, ChangeListener
from carpool.data.footprint import Footprint, FootprintIndex, tracking
from carpool.data.unit_of_work import Work
from carpool.web.unit_scope import UnitOfWorkFactory, unit_scope

log = logging.getLogger("carpool.live")
_MISSED_MAX = 1000  # changes kept for a running subscription; past it, it simply runs again


class Receiver(Protocol):
    """Where a subscription's answers go (its socket)."""

    def answered(self, sub: Subscription, answer: SubResponse) -> None: ...


class Subscription:
    """One live GET: its path, the socket it belongs to, what its last run read and answered."""

    __slots__ = (
        "caller",
        "digest",
        "ended",
        "footprint",
        "id",
        "if_none_match",
        "parent",
        "path",
        "receiver",
    )

    def __init__(
        self,
        sub_id: str,
        path: str,
        parent: Request,
        receiver: Receiver,
        *,
        if_none_match: str | None = None,
    ) -> None:
        self.id = sub_id
        self.path = path
        self.parent = parent  # the socket's request: its identity, its headers
        self.receiver = receiver
        self.if_none_match = if_none_match
        self.footprint: Footprint | None = None  # None until its first run has answered
        self.digest: bytes | None = None  # of the last answer sent (or known to the client)
        self.ended = False
        self.caller = caller_of(parent)  # whose subscription it counts as

    def touched_by(self, changes: Iterable[Change]) -> bool:
        """Whether any of `changes` can alter what its last run read."""
        footprint = self.footprint
        return footprint is not None and any(
            footprint.touched_by(change.table, change.ids) for change in changes
        )


@dataclass(slots=True)
class LiveStats:
    """What this worker's live answers have cost so far."""

    rounds: int = 0
    runs: int = 0
    queries: int = 0


class LiveHub:
    """This worker's subscriptions, at most `max_total`; re-runs them as changes commit."""

    def __init__(
        self,
        listener: ChangeListener,
        unit_of_work: UnitOfWorkFactory,
        *,
        max_total: int,
        max_per_caller: int | None = None,
        round_size: int = 500,
        retry_notice_after_s: float = 2.0,
    ) -> None:
        self._listener = listener
        self._unit_of_work = unit_of_work
        self._max_total = max_total
        self.max_per_caller = max_per_caller or max_total
        self._per_caller: Counter[str] = Counter()
        self._round_size = round_size
        self._subs: set[Subscription] = set()
        self._index: FootprintIndex[Subscription] = FootprintIndex()
        self._running: dict[Subscription, list[Change] | None] = {}
        self._due: dict[Subscription, None] = {}  # ordered: first touched, first re-run
        self._wake = asyncio.Event()
        self._rounds: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = LiveStats()
        # Re-runs that failed for a passing reason run again, with backoff, until they succeed.
        self.retries = RerunRetries(self._make_due, notice_after_s=retry_notice_after_s)
        listener.consume(self._changed, self._resume)

    @property
    def count(self) -> int:
        """Subscriptions held now."""
        return len(self._subs)

    def caller_has_room(self, sub: Subscription) -> bool:
        """Whether `sub`'s caller holds fewer than `max_per_caller` subscriptions here (one
        caller, or one address without a token, cannot take every slot of the worker)."""
        return self._per_caller[sub.caller] < self.max_per_caller

    def reserve(self, sub: Subscription) -> bool:
        """Count `sub` in; False if the worker already holds `max_total` subscriptions."""
        if len(self._subs) >= self._max_total:
            return False
        self._subs.add(sub)
        self._per_caller[sub.caller] += 1
        self._running[sub] = []
        return True

    def release(self, sub: Subscription) -> None:
        """Forget `sub`: it is never run again."""
        sub.ended = True
        if sub in self._subs:
            self._per_caller[sub.caller] -= 1
            if self._per_caller[sub.caller] <= 0:
                del self._per_caller[sub.caller]
        self._subs.discard(sub)
        self._index.drop(sub)
        self._due.pop(sub, None)
        self._running.pop(sub, None)
        self.retries.forget(sub)

    async def listen(self) -> None:
        """Make sure committed changes reach this worker (before a first run reads anything)."""
        await self._listener.start()
        if self._rounds is None and not self._closing:
            self._rounds = asyncio.create_task(self._run_rounds(), name="carpool-live")

    async def first_run(self, sub: Subscription) -> None:
        """Answer a reserved subscription now, on a read-only unit of its own."""
        async with unit_scope(self._unit_of_work, method="GET") as scope:
            await self._run([sub], scope.work)
            self.stats.queries += scope.work.stats.queries

    async def close(self, *, grace_s: float = 10.0) -> None:
        """Stop re-running (at shutdown, before the database goes away): a round under way
        gets `grace_s` seconds to end and release its unit of work, then is cancelled."""
        self._closing = True
        self.retries.close()
        self._wake.set()
        task, self._rounds = self._rounds, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, subs: list[Subscription], work: Work) -> None:
        """Run the GET of `subs` (identical: one caller, one path) once on `work` and hand its
        answer to each socket, with nothing in between: a later run can only answer after
        this one has."""
        lead = subs[0]
        for sub in subs:
            self._running[sub] = []
        try:
            with tracking() as footprint:
                # The subscriber's call: charged to their budget, its scope and token expiry
                # checked, as for any call (a 429 or 401 ends the subscription).
                get = SubRequest("GET", lead.path)
                answer = await dispatch_subrequest(lead.parent, get, work)
        finally:
            missed = [self._running.pop(sub, []) for sub in subs]
        self.stats.runs += 1
        for sub, its_missed in zip(subs, missed, strict=True):
            self._deliver(sub, answer, footprint, its_missed)

    def _deliver(
        self,
        sub: Subscription,
        answer: SubResponse,
        footprint: Footprint,
        missed: list[Change] | None,
    ) -> None:
        if sub.ended:
            return
        if answer.status < 500 or sub.footprint is None:
            # A failed run (the database away) read less than the answer depends on.
            sub.footprint = footprint
            self._index.put(sub, footprint)
        if sub.digest is not None and transient(answer.status):  # a re-run that failed
            if not self.retries.failed(sub):
                return  # retried soon; the last answer stands until then
        else:
            self.retries.succeeded(sub)
        sub.receiver.answered(sub, answer)
        if not sub.ended and (missed is None or sub.touched_by(missed)):
            self._make_due(sub)

    def _changed(self, changes: list[Change]) -> None:
        for sub, missed in self._running.items():
            if missed is not None:
                missed.extend(changes)
                if len(missed) > _MISSED_MAX:
                    self._running[sub] = None
        touched: set[Subscription] = set()
        for change in changes:
            touched |= self._index.touched(change.table, change.ids)
        for sub in touched:
            if sub not in self._running:
                self._make_due(sub)

    def _resume(self) -> None:
        """The listener was away: anything may have changed; run every subscription again."""
        for sub in self._subs:
            if sub in self._running:
                self._running[sub] = None
            else:
                self._make_due(sub)

    def _make_due(self, sub: Subscription) -> None:
        self._due[sub] = None
        self._wake.set()

    async def _run_rounds(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            ready = [sub for sub in self._due if sub not in self._running and not sub.ended]
            for sub in ready:
                del self._due[sub]
            for start in range(0, len(ready), self._round_size):
                await self._round(ready[start : start + self._round_size])

    async def _round(self, subs: list[Subscription]) -> None:
        """Re-run `subs` together on one read-only unit (their lookups coalesce)."""
        self.stats.rounds += 1
        try:
            async with unit_scope(self._unit_of_work, method="GET") as scope:
                runs = (self._run(same, scope.work) for same in _identical(subs))
                for outcome in await asyncio.gather(*runs, return_exceptions=True):
                    if isinstance(outcome, Exception):
                        log.error("a subscription's run failed", exc_info=outcome)
                self.stats.queries += scope.work.stats.queries
        except Exception:  # the database is away: run them again, with backoff
            log.exception("re-running %d subscriptions failed", len(subs))
            for sub in subs:
                if not sub.ended:
                    self.retries.failed(sub)


def caller_of(parent: Request | None) -> str:
    """Whose subscriptions these are: the socket's `sub`, or its address without a token."""
    identity = parent.ctx.identity if parent is not None else None
    if identity is not None and identity.authenticated:
        return f"sub:{identity.sub}"
    return f"ip:{getattr(parent, 'ip', None) or 'unknown'}"


def _identical(subs: list[Subscription]) -> list[list[Subscription]]:
    """`subs` grouped by what their answer depends on: the path and the caller (identity and,
    for an anonymous caller, the address their budget is kept under)."""
    groups: dict[tuple[object, ...], list[Subscription]] = {}
    for sub in subs:
        parent = sub.parent
        identity = parent.ctx.identity
        address = parent.ip if identity is None or not identity.authenticated else ""
        groups.setdefault((sub.path, identity, address), []).append(sub)
    return list(groups.values())
