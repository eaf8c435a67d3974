"""Read models of the catalog, assembled with a constant number of queries per call."""

from __future__ import annotations

from collections.abc import Sequence

from carpool.catalog import loaders, queries
from carpool.catalog.queries import Row
from carpool.data import footprint
from carpool.data.unit_of_work import Work
from carpool.errors import Conflict


async def grommet(uow: Work, grommet_id: int) -> Row | None:
    """One grommet, or None (through the unit's loader: concurrent lookups share a query)."""
    return await loaders.grommets(uow).load(grommet_id)


async def grommet_page(uow: Work, *, after: int, limit: int) -> tuple[list[Row], bool]:
    """A page of grommets by id, and whether more follow it."""
    # One row more than asked tells whether another page exists, so a last page says so.
    footprint.read_table("grommets")
    rows = await uow.run(queries.grommet_page, after=after, limit=limit + 1)
    return rows[:limit], len(rows) > limit


async def widget(uow: Work, widget_id: int, *, include_grommets: bool) -> Row | None:
    """One widget with its parts (grommets embedded if asked), or None; through the loaders."""
    row = await loaders.widgets(uow).load(widget_id)
    if row is None:
        return None
    (assembled,) = await _with_parts(uow, [row], include_grommets=include_grommets)
    return assembled


async def widget_page(
    uow: Work, *, after: int, limit: int, include_grommets: bool
) -> tuple[list[Row], bool]:
    """A page of widgets by id with their parts (grommets embedded if asked); more follow?"""
    footprint.read_table("widgets")
    rows = await uow.run(queries.widget_page, after=after, limit=limit + 1)
    items = await _with_parts(uow, rows[:limit], include_grommets=include_grommets)
    return items, len(rows) > limit


async def _with_parts(uow: Work, rows: Sequence[Row], *, include_grommets: bool) -> list[Row]:
    if not rows:
        return []
    loaded = await loaders.widget_parts(uow).load_many([row["id"] for row in rows])
    parts = [found or [] for found in loaded]
    embedded: dict[int, Row] | None = None
    if include_grommets:
        embedded = await _grommets_of(uow, sorted({p["grommet_id"] for ps in parts for p in ps}))
    return [widget_body(row, ps, embedded) for row, ps in zip(rows, parts, strict=True)]


async def _grommets_of(uow: Work, ids: list[int]) -> dict[int, Row]:
    """The grommets parts name; each exists (a foreign key says so)."""
    loader = loaders.grommets(uow)
    found = dict(zip(ids, await loader.load_many(ids), strict=True))
    # A miss remembered earlier in this unit may predate a grommet another transaction
    # has since committed (READ COMMITTED): the part proves it exists, so ask once more.
    stale = [gid for gid, row in found.items() if row is None]
    for gid in stale:
        loader.forget(gid)
    if stale:
        found.update(zip(stale, await loader.load_many(stale), strict=True))
    missing = sorted(gid for gid, row in found.items() if row is None)
    if missing:
        # Another transaction removed the part and its grommet between our two reads.
        raise Conflict(
            f"the catalog changed while this was read (grommet {missing[0]} is gone); retry"
        )
    return {gid: row for gid, row in found.items() if row is not None}


def widget_body(row: Row, parts: list[Row], grommets: dict[int, Row] | None) -> Row:
    """A widget as clients see it: parts by grommet id, or with the grommets embedded."""
    if grommets is None:
        shown = parts
    else:
        shown = [{"grommet": grommets[p["grommet_id"]], "quantity": p["quantity"]} for p in parts]
    return {
        "id": row["id"],
        "name": row["name"],
        "parts": shown,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
