"""What a call read: the tables and keys its loaders and queries touched, for live answers.

Recording is off unless a caller asks for it with `tracking()`: a subscription's run then
collects, in its own `Footprint`, every key its loaders were asked for and every table it
read as a whole (pages). Plain calls pay one context-variable lookup per load.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

H = TypeVar("H", bound=Hashable)


@dataclass(slots=True)
class Footprint:
    """Tables read whole, and keys read by table (a key asked for and missing counts too)."""

    tables: set[str] = field(default_factory=set)
    keys: dict[str, set[Hashable]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether nothing was read at all (no change can alter the answer)."""
        return not self.tables and not self.keys

    def touched_by(self, table: str, ids: Iterable[Hashable] | None) -> bool:
        """Whether a change of `ids` (None: any row) in `table` can alter what was read."""
        if table in self.tables:
            return True
        read = self.keys.get(table)
        if not read:
            return False
        return ids is None or not read.isdisjoint(ids)


_current: ContextVar[Footprint | None] = ContextVar("carpool_footprint", default=None)


@contextmanager
def tracking() -> Iterator[Footprint]:
    """Record into a new Footprint whatever the code in this block (and tasks it starts) reads."""
    footprint = Footprint()
    token = _current.set(footprint)
    try:
        yield footprint
    finally:
        _current.reset(token)


def read_keys(table: str, keys: Iterable[Hashable]) -> None:
    """Note that rows of `table` with these keys were read (by a loader)."""
    footprint = _current.get()
    if footprint is not None:
        footprint.keys.setdefault(table, set()).update(keys)


def read_table(table: str) -> None:
    """Note that `table` was read as a whole (a page, a filter): any change there may matter."""
    footprint = _current.get()
    if footprint is not None:
        footprint.tables.add(table)


class FootprintIndex(Generic[H]):
    """Holders (subscriptions) by what their footprints read, so that finding those a change
    touches costs the size of the change, not the number of holders."""

    def __init__(self) -> None:
        self._footprints: dict[H, Footprint] = {}
        self._by_key: dict[tuple[str, Hashable], set[H]] = {}
        self._whole: dict[str, set[H]] = {}  # read the table whole
        self._any: dict[str, set[H]] = {}  # read the table whole or some of its keys

    def put(self, holder: H, footprint: Footprint) -> None:
        """Index `holder` by `footprint` (replacing what it was indexed by)."""
        self.drop(holder)
        self._footprints[holder] = footprint
        for table in footprint.tables:
            self._whole.setdefault(table, set()).add(holder)
            self._any.setdefault(table, set()).add(holder)
        for table, keys in footprint.keys.items():
            self._any.setdefault(table, set()).add(holder)
            for key in keys:
                self._by_key.setdefault((table, key), set()).add(holder)

    def drop(self, holder: H) -> None:
        """Forget `holder`."""
        footprint = self._footprints.pop(holder, None)
        if footprint is None:
            return
        for table in footprint.tables:
            _discard(self._whole, table, holder)
            _discard(self._any, table, holder)
        for table, keys in footprint.keys.items():
            _discard(self._any, table, holder)
            for key in keys:
                _discard(self._by_key, (table, key), holder)

    def touched(self, table: str, ids: Iterable[Hashable] | None) -> set[H]:
        """The holders whose footprint a change of `ids` (None: any row) in `table` touches."""
        if ids is None:
            return set(self._any.get(table, ()))
        found = set(self._whole.get(table, ()))
        for key in ids:
            found.update(self._by_key.get((table, key), ()))
        return found


def _discard(index: dict[Any, set[H]], at: Any, holder: H) -> None:
    holders = index.get(at)
    if holders is not None:
        holders.discard(holder)
        if not holders:
            del index[at]
