"""Writes of the catalog: each runs its statements and keeps the unit's loaders honest.

A handler calls one of these and never touches the loaders itself, so a later read in the
same unit of work (a batch item after this one) sees the write: read-your-writes by
construction, not by a duty each handler must remember.

Updates and deletes take the call's `Preconditions` (If-Match / If-None-Match): when the call
set any, the row is locked and its current representation compared before anything is
written, in the same transaction, so a client that sends If-Match can never lose an update.
"""

from __future__ import annotations

from typing import Any

from carpool.catalog import loaders, queries, reads
from carpool.catalog.queries import Row
from carpool.data.unit_of_work import Work
from carpool.web.conditional import Preconditions, etag_of_value


async def create_grommet(work: Work, values: dict[str, Any]) -> Row:
    """Insert a grommet; its row. A taken name is a Conflict."""
    row = await work.run(queries.create_grommet, values)
    loaders.grommet_written(work, row["id"], row)
    return row


async def update_grommet(
    work: Work, grommet_id: int, changes: dict[str, Any], *, preconditions: Preconditions
) -> Row | None:
    """Change a grommet's fields if `preconditions` hold; its row now, or None if it does not
    exist. Conditions that do not hold raise PreconditionFailed (nothing written)."""
    if not await _grommet_holds(work, grommet_id, preconditions):
        return None
    row = await work.run(queries.update_grommet, grommet_id, changes)
    if row is not None:
        loaders.grommet_written(work, grommet_id, row)
    return row


async def delete_grommet(work: Work, grommet_id: int, *, preconditions: Preconditions) -> bool:
    """Delete a grommet if `preconditions` hold; False if it did not exist. One still in use
    is a Conflict."""
    if not await _grommet_holds(work, grommet_id, preconditions):
        return False
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
    work: Work,
    widget_id: int,
    *,
    name: str | None,
    parts: list[Row] | None,
    preconditions: Preconditions,
) -> Row | None:
    """Rename a widget and/or replace its parts if `preconditions` hold; the widget now, or
    None if it does not exist."""
    if not await _widget_holds(work, widget_id, preconditions):
        return None
    row = await work.run(queries.update_widget, widget_id, name=name, parts=parts)
    if row is None:
        return None
    loaders.widget_written(work, widget_id, row, parts)
    return await reads.widget(work, widget_id, include_grommets=False)


async def delete_widget(work: Work, widget_id: int, *, preconditions: Preconditions) -> bool:
    """Delete a widget and its parts if `preconditions` hold; False if it did not exist."""
    if not await _widget_holds(work, widget_id, preconditions):
        return False
    deleted = await work.run(queries.delete_widget, widget_id)
    if deleted:
        loaders.widget_written(work, widget_id, None, None)
    return deleted


async def _grommet_holds(work: Work, grommet_id: int, preconditions: Preconditions) -> bool:
    """False if the grommet does not exist; raises PreconditionFailed if a condition fails.

    Without conditions this costs nothing; with them, one locking read.
    """
    if not preconditions.present:
        return True
    row = await work.run(queries.lock_grommet, grommet_id)
    if row is None:
        return False  # a 404 answers, whatever the conditions (RFC 9110 section 13.2.1)
    loaders.grommet_written(work, grommet_id, row)  # the freshest state there is
    preconditions.check(etag_of_value(row))
    return True


async def _widget_holds(work: Work, widget_id: int, preconditions: Preconditions) -> bool:
    """As `_grommet_holds`, compared with the widget as `GET /widgets/{id}` answers it."""
    if not preconditions.present:
        return True
    row = await work.run(queries.lock_widget, widget_id)
    if row is None:
        return False
    parts = (await work.run(queries.parts_by_widget_ids, [widget_id]))[widget_id]
    loaders.widget_written(work, widget_id, row, parts)
    preconditions.check(etag_of_value(reads.widget_body(row, parts, None)))
    return True
