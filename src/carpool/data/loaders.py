"""Loaders by key (the DataLoader pattern): lookups made at the same moment become one fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from aiodataloader import DataLoader

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
    answer loads as None.

    `source` names what the keys are keys of (a table): every key asked for is noted in the
    footprint of a tracked call (`carpool.data.footprint`), so live answers know what they read.
    """

    def __init__(
        self, fetch: Fetch[K, V], *, coalesce: bool = True, source: str | None = None
    ) -> None:
        self._fetch = fetch
        self.source = source
        self.coalesce = coalesce
        # No max_batch_size, ever: aiodataloader would run the chunks concurrently, and the
        # unit of work has one connection; one statement with every key is the point.
        self._loader: DataLoader[K, V | None] = DataLoader(
            self._batch, batch=coalesce, cache=coalesce
        )

    async def load(self, key: K) -> V | None:
        """The value for `key`, or None."""
        # Shielded: the future is shared by every caller of this key, and a cancelled
        # caller must not cancel it (nor leave a cancelled future in the cache) for the others.
        if self.source is not None:
            footprint.read_keys(self.source, (key,))
        return await asyncio.shield(self._loader.load(key))

    async def load_many(self, keys: Iterable[K]) -> list[V | None]:
        """The values for `keys`, in order (None where missing), in one fetch at most."""
        wanted = list(keys)
        if self.source is not None:
            footprint.read_keys(self.source, wanted)
        return await asyncio.shield(self._loader.load_many(wanted))

    def prime(self, key: K, value: V | None) -> None:
        """Remember `value` as the state of `key` now (after a write), replacing what was loaded."""
        if self.coalesce:
            self._loader.clear(key).prime(key, value)

    def forget(self, key: K) -> None:
        """Drop what is known of `key`: the next load fetches it."""
        self._loader.clear(key)

    def forget_all(self) -> None:
        """Drop everything loaded: the next loads fetch again."""
        self._loader.clear_all()

    async def _batch(self, keys: list[K]) -> list[V | None]:
        found = await self._fetch(keys)
        return [found.get(key) for key in keys]
