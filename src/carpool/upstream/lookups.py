"""The stock lookups of one call: each grommet asked about once, at most `max_calls` asked,
at most `FAN_OUT` at once.

A call is its outer call (a single request, a whole batch, one frame, one run of a
subscription): batch items share their batch's budget and its answers, so a batch of 25
items about the same 1,000-part widget asks the inventory service 1,000 times, not 25,000,
and a call that would ask more than `max_calls` times is refused (503) before it asks at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from carpool.errors import Unavailable

FAN_OUT = 16  # lookups of one call in flight at once (the session's pool is the worker's)

Ask = Callable[[int], Awaitable[int]]


class StockFor:
    """One call's `StockLevel` (`stock(grommet_id)` awaits the units in stock).

    Lookups asked for together, before any of them runs (as `asyncio.gather` of them does),
    are judged together: all within the call's budget, or all refused (Unavailable) before
    any is sent.
    """

    __slots__ = ("_lookups", "_outer", "_pending", "_refused")

    def __init__(self, lookups: CallLookups, outer: object) -> None:
        self._lookups = lookups
        self._outer = outer
        self._pending: set[int] = set()
        self._refused: dict[int, Unavailable] = {}

    def __call__(self, grommet_id: int) -> Awaitable[int]:
        self._pending.add(grommet_id)
        return self._level(grommet_id)

    async def _level(self, grommet_id: int) -> int:
        if grommet_id in self._pending:  # the first of those asked together: judge them all
            pending, self._pending = self._pending, set()
            try:
                self._lookups.reserve(self._outer, pending)
            except Unavailable as refusal:
                self._refused.update(dict.fromkeys(pending, refusal))
        refused = self._refused.pop(grommet_id, None)
        if refused is not None:
            raise refused
        return await self._lookups.level(grommet_id)


class CallLookups:
    """Stock levels for one unit of work, shared by every call on it, each call within budget."""

    def __init__(self, ask: Ask, *, max_calls: int) -> None:
        self._ask = ask
        self._max_calls = max_calls
        self._levels: dict[int, asyncio.Task[int]] = {}
        self._reserved: set[int] = set()  # asked about (or about to be) on this unit
        self._asked: dict[int, int] = {}  # by outer call (its id): lookups it has caused
        self._fan_out = asyncio.Semaphore(FAN_OUT)

    def forget_all(self) -> None:
        """A unit's loaders forget on a rollback to a savepoint: stock is not in the database,
        so nothing here can be stale for that reason."""

    def reserve(self, outer: object, grommet_ids: set[int]) -> None:
        """Count the lookups `grommet_ids` would add for `outer`; Unavailable (nothing counted,
        nothing asked) if that passes the budget."""
        new = grommet_ids - self._reserved
        spent = self._asked.get(id(outer), 0)
        if spent + len(new) > self._max_calls:
            raise Unavailable(
                f"This call would ask the inventory service about {spent + len(new)} grommets;"
                f" a call may ask about at most {self._max_calls} (UPSTREAM_MAX_CALLS)."
                " Ask about fewer widgets per call."
            )
        self._asked[id(outer)] = spent + len(new)
        self._reserved |= new

    async def level(self, grommet_id: int) -> int:
        """The stock of `grommet_id`, asked once per unit of work (and waited for by all)."""
        task = self._levels.get(grommet_id)
        if task is None:
            task = self._levels[grommet_id] = asyncio.ensure_future(self._fetch(grommet_id))
            task.add_done_callback(_retrieved)
        # Shielded: one caller giving up (its widget failed elsewhere) leaves it to the others.
        return await asyncio.shield(task)

    async def _fetch(self, grommet_id: int) -> int:
        async with self._fan_out:
            return await self._ask(grommet_id)


def _retrieved(task: asyncio.Task[Any]) -> None:
    # Its waiters may all have gone: retrieve the error so asyncio does not report it.
    if not task.cancelled():
        task.exception()
