"""Loaders by key (the DataLoader pattern): lookups made at the same moment become one fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from carpool.data import footprint

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[list[K]], Awaitable[Mapping[K, V]]]


class KeyLoader(Generic[K, V]):
    """Values by key, fetched through one function that answers many keys at once.

    With `coalesce`, the loads made in one event-loop turn (by one handler or by many
    tasks sharing a unit of work) become ONE call of `fetch`, and each key is fetched
    at most once until it is forgotten. Without it, every load is its own call and
    nothing is remembered (for measuring the difference only). A key `fetch` does not
    answer loads as None. A failed fetch fails its waiters and is not remembered.

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
        self._known: dict[K, asyncio.Future[V | None]] = {}
        self._queue: dict[K, asyncio.Future[V | None]] = {}  # keys for the next fetch
        self._running: set[asyncio.Task[None]] = set()

    async def load(self, key: K) -> V | None:
        """The value for `key`, or None."""
        if self.source is not None:
            footprint.read_keys(self.source, (key,))
        if not self.coalesce:
            return await self._fetch_one(key)
        future = self._known.get(key) or self._enqueue(key)
        if future.done():
            return future.result()
        # Shielded: the future is shared by every caller of this key, and a cancelled
        # caller must not cancel it for the others.
        return await asyncio.shield(future)

    async def load_many(self, keys: Iterable[K]) -> list[V | None]:
        """The values for `keys`, in order (None where missing), in one fetch at most."""
        wanted = list(keys)
        if self.source is not None:
            footprint.read_keys(self.source, wanted)
        if not self.coalesce:
            return [await self._fetch_one(key) for key in wanted]
        futures = [self._known.get(key) or self._enqueue(key) for key in wanted]
        if all(future.done() for future in futures):
            return [future.result() for future in futures]
        gathered = asyncio.gather(*futures)
        # A cancelled caller stops waiting; a fetch that then fails (its unit of work ended)
        # must not be reported as an exception nobody retrieved.
        gathered.add_done_callback(_retrieved)
        return await asyncio.shield(gathered)

    async def _fetch_one(self, key: K) -> V | None:
        return (await self._fetch([key])).get(key)

    def prime(self, key: K, value: V | None) -> None:
        """Remember `value` as the state of `key` now (after a write), replacing what was loaded."""
        if self.coalesce:
            future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
            future.set_result(value)
            self._known[key] = future

    def forget(self, key: K) -> None:
        """Drop what is known of `key`: the next load fetches it."""
        self._known.pop(key, None)

    def forget_all(self) -> None:
        """Drop everything loaded: the next loads fetch again."""
        self._known.clear()

    def _enqueue(self, key: K) -> asyncio.Future[V | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        if not self._queue:
            # Every load made before the loop's next turn joins this fetch.
            loop.call_soon(self._dispatch)
        self._queue[key] = self._known[key] = future
        return future

    def _dispatch(self) -> None:
        batch, self._queue = self._queue, {}
        # A task of its own: no caller's cancellation can abandon the others' fetch.
        task = asyncio.ensure_future(self._resolve(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _resolve(self, batch: dict[K, asyncio.Future[V | None]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except BaseException as exc:
            for key, future in batch.items():
                if self._known.get(key) is future:
                    del self._known[key]  # a failure is not remembered
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
                        future.exception()  # retrieved: no "never retrieved" report
            if not isinstance(exc, Exception):
                raise
            return
        for key, future in batch.items():
            if not future.done():
                future.set_result(found.get(key))


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
