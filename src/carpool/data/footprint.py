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
