"""Loaders by key (the DataLoader pattern): lookups made at the same moment become one fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from carpool.data import footprint

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[list[K]], Awaitable[Mapping[K, V]]]


class _Entry(Generic[V]):
    """A key's state in a loader: being fetched (its waiters wait), or known (its value)."""

    __slots__ = ("known", "value", "waiters")

    def __init__(self) -> None:
        self.known = False
        self.value: V | None = None
        # One future per waiting caller, never shared: a cancelled caller cancels only its own.
        self.waiters: list[asyncio.Future[V | None]] = []

    def waiter(self) -> asyncio.Future[V | None]:
        """A future of the caller's own, settled with the entry."""
        waiter: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    def settle(self, value: V | None) -> None:
        self.known, self.value = True, value
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(value)

    def fail(self, exc: BaseException) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                waiter.cancel()
            else:
                waiter.set_exception(exc)


class KeyLoader(Generic[K, V]):
    """Values by key, fetched through one function that answers many keys at once.

    With `coalesce`, the loads made in one event-loop turn (by one handler or by many
    tasks sharing a unit of work) become ONE call of `fetch`, and each key is fetched
    at most once until it is forgotten. Without it, every load is its own call and
    nothing is remembered (for measuring the difference only). A key `fetch` does not
    answer loads as None. A failed fetch fails its waiters and is not remembered.

    The fetch runs in a task of its own and each waiting caller waits on a future of its
    own, so a caller that is cancelled stops waiting without cancelling the fetch the others
    wait for (what `asyncio.shield` around a shared future did, without its extra future
    and callbacks per load).

    `source` names what the keys are keys of (a table): every key asked for is noted in the
    footprint of a tracked call (`carpool.data.footprint`), so live answers know what they read.
    """

    __slots__ = ("_fetch", "_known", "_queue", "_running", "coalesce", "source")

    def __init__(
        self, fetch: Fetch[K, V], *, coalesce: bool = True, source: str | None = None
    ) -> None:
        self._fetch = fetch
        self.source = source
        self.coalesce = coalesce
        self._known: dict[K, _Entry[V]] = {}
        self._queue: dict[K, _Entry[V]] = {}  # keys for the next fetch
        self._running: set[asyncio.Task[None]] = set()

    async def load(self, key: K) -> V | None:
        """The value for `key`, or None."""
        if self.source is not None:
            footprint.read_keys(self.source, (key,))
        if not self.coalesce:
            return await self._fetch_one(key)
        entry = self._known.get(key) or self._enqueue(key)
        if entry.known:
            return entry.value
        return await entry.waiter()

    async def load_many(self, keys: Iterable[K]) -> list[V | None]:
        """The values for `keys`, in order (None where missing), in one fetch at most."""
        wanted = list(keys)
        if self.source is not None:
            footprint.read_keys(self.source, wanted)
        if not self.coalesce:
            return [await self._fetch_one(key) for key in wanted]
        entries = [self._known.get(key) or self._enqueue(key) for key in wanted]
        for entry in entries:
            if not entry.known:
                await entry.waiter()  # the others of this fetch are known with it
        return [entry.value for entry in entries]

    async def _fetch_one(self, key: K) -> V | None:
        return (await self._fetch([key])).get(key)

    def prime(self, key: K, value: V | None) -> None:
        """Remember `value` as the state of `key` now (after a write), replacing what was loaded."""
        if self.coalesce:
            entry: _Entry[V] = _Entry()
            entry.settle(value)
            self._known[key] = entry

    def forget(self, key: K) -> None:
        """Drop what is known of `key`: the next load fetches it."""
        self._known.pop(key, None)

    def forget_all(self) -> None:
        """Drop everything loaded: the next loads fetch again."""
        self._known.clear()

    def _enqueue(self, key: K) -> _Entry[V]:
        if not self._queue:
            # Every load made before the loop's next turn joins this fetch.
            asyncio.get_running_loop().call_soon(self._dispatch)
        entry: _Entry[V] = _Entry()
        self._queue[key] = self._known[key] = entry
        return entry

    def _dispatch(self) -> None:
        batch, self._queue = self._queue, {}
        # A task of its own: no caller's cancellation can abandon the others' fetch.
        task = asyncio.ensure_future(self._resolve(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _resolve(self, batch: dict[K, _Entry[V]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except BaseException as exc:
            for key, entry in batch.items():
                if self._known.get(key) is entry:
                    del self._known[key]  # a failure is not remembered
                entry.fail(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, entry in batch.items():
            if not entry.known:
                entry.settle(found.get(key))
