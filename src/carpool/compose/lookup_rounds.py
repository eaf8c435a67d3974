"""Lookup rounds: the read-only request frames of one socket share the lookups they make at
the same moment, as the items of a batch do (docs/websocket.md, "Lookup rounds").

Each frame still runs on a unit of work of its own (its scope, its answer, its direct
statements); only its loaders are borrowed. A loader is shared by the frames that ask for
it in one event-loop turn; the next turn's frames get a new one, so no frame ever sees a
value read before it arrived (a frame sent after a write was answered reads after the
COMMIT). Each fetch of a shared loader runs on a read-only unit of work of its own, opened
for that statement and released after it: one connection and one statement for every frame
of the round, and none held while a frame does something else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from carpool.data.sql import Connection, QueryStats
from carpool.data.unit_of_work import Forgetful, UnitOfWork, Work
from carpool.web.unit_scope import UnitOfWorkFactory, unit_scope

P = ParamSpec("P")
T = TypeVar("T")
L = TypeVar("L", bound=Forgetful)


class _FetchWork(Work):
    """What a shared loader is made on: each statement on a read-only unit of its own.

    The statements' figures are added to the units of the frames that took the loader, so
    each frame's `Server-Timing` counts the statements its lookups took part in.
    """

    __slots__ = ("_factory", "_fetches", "users")

    def __init__(
        self, first: UnitOfWork, factory: UnitOfWorkFactory, fetches: set[asyncio.Task[Any]]
    ) -> None:
        super().__init__(first)  # for `coalesce` and `read_only` only: never run on
        self._factory = factory
        self._fetches = fetches
        self.users: list[QueryStats] = []

    async def run(
        self,
        query: Callable[Concatenate[Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        task = asyncio.current_task()
        if task is not None:  # the loader's own fetch task: waited for when the socket ends
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)
        shared = unit_scope(self._factory, method="GET", server_timing=False, observed=False)
        async with shared as scope:
            try:
                return await scope.work.run(query, *args, **kwargs)
            finally:
                await scope.end(200)
                stats = scope.work.stats
                for user in self.users:
                    user.queries += stats.queries
                    user.seconds += stats.seconds


class LookupRounds:
    """The shared loaders of one socket's read-only frames, one set per event-loop turn."""

    def __init__(self, factory: UnitOfWorkFactory) -> None:
        self._factory = factory
        self._turn: dict[str, tuple[Forgetful, _FetchWork]] = {}
        self._fetches: set[asyncio.Task[Any]] = set()

    def loader(self, name: str, make: Callable[[Work], L], work: Work) -> L:
        """The loader `name` of this turn, made by `make` on its own fetch work at the first
        ask; `work` (a frame's) counts its statements."""
        turn = self._turn
        found = turn.get(name)
        if found is None:
            if not turn:  # the next turn's frames get loaders of their own
                asyncio.get_running_loop().call_soon(turn.clear)
            fetch_work = _FetchWork(work._unit, self._factory, self._fetches)
            found = turn[name] = (make(fetch_work), fetch_work)
        found[1].users.append(work.stats)
        return found[0]  # type: ignore[return-value]  # the same `make` made it

    async def close(self) -> None:
        """Wait for the fetches still running (the socket has ended; their units release)."""
        while self._fetches:
            await asyncio.wait(set(self._fetches))
