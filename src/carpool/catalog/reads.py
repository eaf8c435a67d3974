"""Read models of the catalog, assembled with a constant number of queries per call."""

from __future__ import annotations

from collections.abc import Sequence

from carpool.catalog import queries
from carpool.catalog.queries import Row
from carpool.data.unit_of_work import UnitOfWork


async def grommet(uow: UnitOfWork, grommet_id: int) -> Row | None:
    """One grommet, or None."""
    return (await uow.run(queries.grommets_by_ids, [grommet_id])).get(grommet_id)


async def grommet_page(uow: UnitOfWork, *, after: int, limit: int) -> list[Row]:
    """A page of grommets by id."""
    return await uow.run(queries.grommet_page, after=after, limit=limit)


async def widget(uow: UnitOfWork, widget_id: int, *, include_grommets: bool) -> Row | None:
    """One widget with its parts (grommets embedded if asked), or None."""
    found = await uow.run(queries.widgets_by_ids, [widget_id])
    if widget_id not in found:
        return None
    (assembled,) = await _with_parts(uow, [found[widget_id]], include_grommets=include_grommets)
    return assembled


async def widget_page(
    uow: UnitOfWork, *, after: int, limit: int, include_grommets: bool
) -> list[Row]:
    """A page of widgets by id, each with its parts (grommets embedded if asked)."""
    rows = await uow.run(queries.widget_page, after=after, limit=limit)
    return await _with_parts(uow, rows, include_grommets=include_grommets)


async def _with_parts(uow: UnitOfWork, rows: Sequence[Row], *, include_grommets: bool) -> list[Row]:
    if not rows:
        return []
    parts = await uow.run(queries.parts_by_widget_ids, [row["id"] for row in rows])
    embedded: dict[int, Row] = {}
    if include_grommets:
        wanted = sorted({p["grommet_id"] for ps in parts.values() for p in ps})
        embedded = await uow.run(queries.grommets_by_ids, wanted) if wanted else {}
    return [
        widget_body(row, parts[row["id"]], embedded if include_grommets else None) for row in rows
    ]


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
