"""Writes of the catalog: each runs its statements and keeps the unit's loaders honest.

A handler calls one of these and never touches the loaders itself, so a later read in the
same unit of work (a batch item after this one) sees the write: read-your-writes by
construction, not by a duty each handler must remember.
"""

from __future__ import annotations

from typing import Any

from carpool.catalog import loaders, queries, reads
from carpool.catalog.queries import Row
from carpool.data.unit_of_work import Work


async def create_grommet(work: Work, values: dict[str, Any]) -> Row:
    """Insert a grommet; its row. A taken name is a Conflict."""
    row = await work.run(queries.create_grommet, values)
    loaders.grommet_written(work, row["id"], row)
    return row


async def update_grommet(work: Work, grommet_id: int, changes: dict[str, Any]) -> Row | None:
    """Change a grommet's fields; its row now, or None if it does not exist."""
    row = await work.run(queries.update_grommet, grommet_id, changes)
    if row is not None:
        loaders.grommet_written(work, grommet_id, row)
    return row


async def delete_grommet(work: Work, grommet_id: int) -> bool:
    """Delete a grommet; False if it did not exist. One still in use is a Conflict."""
    deleted = await work.run(queries.delete_grommet, grommet_id)
    if deleted:
        loaders.grommet_written(work, grommet_id, None)
    return deleted


async def create_widget(work: Work, name: str, parts: list[Row]) -> Row:
    """Insert a widget with its parts; the widget as clients see it (parts by grommet id)."""
    # Parts are answered in grommet-id order, as every read of the widget answers them.
    ordered = sorted(parts, key=lambda part: part["grommet_id"])
    row = await work.run(queries.create_widget, name, ordered)
    loaders.widget_written(work, row["id"], row, ordered)
    return reads.widget_body(row, ordered, None)


async def update_widget(
    work: Work, widget_id: int, *, name: str | None, parts: list[Row] | None
) -> Row | None:
    """Rename a widget and/or replace its parts; the widget now, or None if it does not exist."""
    row = await work.run(queries.update_widget, widget_id, name=name, parts=parts)
    if row is None:
        return None
    loaders.widget_written(work, widget_id, row, parts)
    return await reads.widget(work, widget_id, include_grommets=False)


async def delete_widget(work: Work, widget_id: int) -> bool:
    """Delete a widget and its parts; False if it did not exist."""
    deleted = await work.run(queries.delete_widget, widget_id)
    if deleted:
        loaders.widget_written(work, widget_id, None, None)
    return deleted
