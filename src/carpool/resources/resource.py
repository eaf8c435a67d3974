"""A resource declared once: its table in, its loader, reads and writes out.

`Resource(table, singular=...)` gives the standard statements (`Statements`), a loader per
unit of work (a `KeyLoader` whose `source` is the table's name, so live answers know what a
call read), reads that go through it (a batch of lookups is one query), and writes that
prime or clear it (read-your-writes in a batch) and honour If-Match / If-None-Match under
a row lock. A resource whose answers are more than its rows (rows of another table) subclasses
it and overrides `represent`, `written`, `create` or `update`; `Embed` puts the row another
resource's column names in its place (`?include=`), through that resource's loader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from carpool.data import footprint
from carpool.data.loaders import KeyLoader
from carpool.data.sql import Row
from carpool.data.unit_of_work import Work
from carpool.errors import Conflict, NotFound
from carpool.resources.fields import embedded_key
from carpool.resources.statements import Statements
from carpool.web.conditional import Preconditions, etag_of_value

NOTHING: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Embed:
    """`?include=<name>`: the `target` row that `column` names, in the column's place, under
    the key `field` (the column's name without `_id`; null where the column is null). No
    N+1: one load for all the rows, through the target's loader."""

    column: str
    target: Resource

    @property
    def field(self) -> str:
        """The key the embedded row takes (`embedded_key`: `maker` for `maker_id`)."""
        return embedded_key(self.column)

    @property
    def description(self) -> str:
        """What the include does, as the API description says it."""
        return f"replaces `{self.column}` with the {self.target.singular} it names"

    async def apply(self, work: Work, rows: Sequence[Row]) -> list[Row]:
        """`rows` with the embedded rows in place of the column."""
        named = sorted({row[self.column] for row in rows if row[self.column] is not None})
        found = await self.target.existing(work, named)
        column, field = self.column, self.field
        return [
            {
                (field if key == column else key): (
                    (None if value is None else found[value]) if key == column else value
                )
                for key, value in row.items()
            }
            for row in rows
        ]


class Resource:
    """A table keyed by `id`, read and written through one unit of work's loader.

    `singular` names one row ("part"); the table's name is the plural, its path and its
    loader's `source`. `in_use` is the 409 of a delete another table refuses; `embeds` the
    includes of its reads (by include name). Subclasses add includes of their own to
    `includes` (name: what it does) and handle them in `represent`.
    """

    def __init__(
        self,
        table: Table,
        *,
        singular: str,
        in_use: str | None = None,
        embeds: Mapping[str, Embed] | None = None,
    ) -> None:
        self.table = table
        self.name = str(table.name)
        self.singular = singular
        self.embeds = dict(embeds or {})
        self.includes: dict[str, str] = {n: e.description for n, e in self.embeds.items()}
        missing = {e.column: e.target.missing_text for e in self.embeds.values()}
        self.statements = Statements(table, singular=singular, in_use=in_use, missing=missing)
        self._loader_name = f"resource.{self.name}"
        # Plain rows are the answers (nothing to represent): reads skip a step.
        self._plain = type(self).represent is Resource.represent

    def missing_text(self, row_id: object) -> str:
        """What a client is told of an id that names no row."""
        return f"{self.singular} {row_id} does not exist"

    def missing(self, row_id: int) -> NotFound:
        """The 404 of an id that names no row."""
        return NotFound(self.missing_text(row_id))

    def loader(self, work: Work) -> KeyLoader[int, Row]:
        """The unit's loader of rows by id (None: no such row)."""
        return work.loader(self._loader_name, self._new_loader)

    def _new_loader(self, work: Work) -> KeyLoader[int, Row]:
        async def fetch(ids: list[int]) -> dict[int, Row]:
            return await work.run(self.statements.by_ids, ids)

        return KeyLoader(fetch, coalesce=work.coalesce, source=self.name)

    # -- reads ---------------------------------------------------------------------------

    async def row(self, work: Work, row_id: int) -> Row | None:
        """The stored row, or None (concurrent lookups share one query)."""
        return await self.loader(work).load(row_id)

    async def one(self, work: Work, row_id: int, include: frozenset[str] = NOTHING) -> Row | None:
        """The resource as clients see it (with `include`), or None."""
        row = await self.loader(work).load(row_id)
        if row is None or (self._plain and not include):
            return row
        (shown,) = await self.represent(work, [row], include)
        return shown

    async def page(
        self, work: Work, *, after: int, limit: int, include: frozenset[str] = NOTHING
    ) -> tuple[list[Row], bool]:
        """A page by id (with `include`), and whether more follow it."""
        footprint.read_table(self.name)  # a page may change with any row of the table
        # One row more than asked tells whether another page exists, so a last page says so.
        rows = await work.run(self.statements.page, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        if self._plain and not include:
            return rows, more
        return await self.represent(work, rows, include), more

    async def represent(
        self, work: Work, rows: Sequence[Row], include: frozenset[str]
    ) -> list[Row]:
        """`rows` as clients see them, with the includes asked for (in name order)."""
        shown = list(rows)
        for name in sorted(include):
            shown = await self.embeds[name].apply(work, shown)
        return shown

    async def existing(self, work: Work, ids: Sequence[int]) -> dict[int, Row]:
        """The rows of `ids`, which a foreign key says exist (a 409 if one is gone)."""
        loader = self.loader(work)
        found = dict(zip(ids, await loader.load_many(ids), strict=True))
        # A miss remembered earlier in this unit may predate a row another transaction has
        # since committed (READ COMMITTED): the foreign key proves it exists, so ask once more.
        stale = [row_id for row_id, row in found.items() if row is None]
        for row_id in stale:
            loader.forget(row_id)
        if stale:
            found.update(zip(stale, await loader.load_many(stale), strict=True))
        gone = sorted(row_id for row_id, row in found.items() if row is None)
        if gone:
            # Another transaction removed the reference and its row between our two reads.
            raise Conflict(
                f"the catalog changed while this was read ({self.singular} {gone[0]} is gone);"
                " retry"
            )
        return {row_id: row for row_id, row in found.items() if row is not None}

    # -- writes: each keeps the loaders honest -------------------------------------------

    def written(self, work: Work, row_id: int, row: Row | None) -> None:
        """After a write in `work`: `row` is the stored row now (None: it is gone)."""
        self.loader(work).prime(row_id, row)

    async def create(self, work: Work, values: dict[str, Any]) -> Row:
        """Insert a row of `values` (an input model's dump); the resource as answered."""
        row = await work.run(self.statements.insert, values)
        self.written(work, row["id"], row)
        return await self._shown(work, row)

    async def update(
        self, work: Work, row_id: int, changes: dict[str, Any], *, preconditions: Preconditions
    ) -> Row | None:
        """Change some columns if `preconditions` hold; the resource now, or None if it does
        not exist. Conditions that do not hold raise PreconditionFailed (nothing written)."""
        if not await self.holds(work, row_id, preconditions):
            return None
        row = await work.run(self.statements.update, row_id, changes)
        if row is None:
            return None
        self.written(work, row_id, row)
        return await self._shown(work, row)

    async def delete(self, work: Work, row_id: int, *, preconditions: Preconditions) -> bool:
        """Delete a row if `preconditions` hold; False if it did not exist."""
        if not await self.holds(work, row_id, preconditions):
            return False
        deleted = await work.run(self.statements.delete, row_id)
        if deleted:
            self.written(work, row_id, None)
        return deleted

    async def holds(self, work: Work, row_id: int, preconditions: Preconditions) -> bool:
        """False if the row does not exist; raises PreconditionFailed if a condition fails.

        Without conditions this costs nothing; with them, one locking read, compared with
        the resource exactly as a GET of it answers (the same bytes, the same ETag).
        """
        if not preconditions.present:
            return True
        row = await work.run(self.statements.lock, row_id)
        if row is None:
            return False  # a 404 answers, whatever the conditions (RFC 9110 section 13.2.1)
        self.written(work, row_id, row)  # the freshest state there is
        preconditions.check(etag_of_value(await self.locked_representation(work, row)))
        return True

    async def locked_representation(self, work: Work, row: Row) -> Row:
        """The resource of a row just locked, as a GET answers it (no includes)."""
        return await self._shown(work, row)

    async def _shown(self, work: Work, row: Row) -> Row:
        if self._plain:
            return row
        (shown,) = await self.represent(work, [row], NOTHING)
        return shown
