"""Widgets as a resource: rows of `widgets` answered with their parts (and, with
`?include=grommets`, each part's grommet), written together with their parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carpool.catalog.grommets import grommets
from carpool.catalog.widgets import parts as widget_parts
from carpool.catalog.widgets.tables import widgets as table
from carpool.data.sql import Connection, Row
from carpool.data.unit_of_work import Work
from carpool.resources.resource import NOTHING, Resource
from carpool.web.conditional import Preconditions


def widget_body(row: Row, parts: list[Row], embedded: dict[int, Row] | None) -> Row:
    """A widget as clients see it: parts by grommet id, or with the grommets embedded."""
    if embedded is None:
        shown = parts
    else:
        shown = [{"grommet": embedded[p["grommet_id"]], "quantity": p["quantity"]} for p in parts]
    return {
        "id": row["id"],
        "name": row["name"],
        "parts": shown,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


class Widgets(Resource):
    """The widgets: a write of one locks the grommets its parts name, then the widget."""

    def __init__(self) -> None:
        super().__init__(table, singular="widget")
        self.includes["grommets"] = "embeds each part's grommet"

    async def represent(
        self, work: Work, rows: Sequence[Row], include: frozenset[str]
    ) -> list[Row]:
        if not rows:
            return []
        loaded = await widget_parts.loader(work).load_many([row["id"] for row in rows])
        parts = [found or [] for found in loaded]
        embedded: dict[int, Row] | None = None
        if "grommets" in include:
            named = sorted({p["grommet_id"] for ps in parts for p in ps})
            embedded = await grommets.existing(work, named)
        return [widget_body(row, ps, embedded) for row, ps in zip(rows, parts, strict=True)]

    def written(self, work: Work, row_id: int, row: Row | None) -> None:
        super().written(work, row_id, row)
        if row is None:
            widget_parts.primed(work, row_id, [])  # they went with the widget

    async def locked_representation(self, work: Work, row: Row) -> Row:
        # Read again, not loaded: the lock on the widget holds its parts still from here on
        # (every write of them locks the widget first), but a load may predate it.
        found = (await work.run(widget_parts.by_widget_ids, [row["id"]]))[row["id"]]
        widget_parts.primed(work, row["id"], found)
        return widget_body(row, found, None)

    async def create(self, work: Work, values: dict[str, Any]) -> Row:
        # Parts are answered in grommet-id order, as every read of the widget answers them.
        ordered = sorted(values["parts"], key=lambda part: part["grommet_id"])
        row = await work.run(self._insert, values["name"], ordered)
        self.written(work, row["id"], row)
        widget_parts.primed(work, row["id"], ordered)
        return widget_body(row, ordered, None)

    async def update(
        self, work: Work, row_id: int, changes: dict[str, Any], *, preconditions: Preconditions
    ) -> Row | None:
        """Rename a widget and/or replace its parts (`changes`: "name", "parts")."""
        if not await self.holds(work, row_id, preconditions):
            return None
        parts: list[Row] | None = changes.get("parts")
        row = await work.run(self._update, row_id, changes.get("name"), parts)
        if row is None:
            return None
        self.written(work, row_id, row)
        if parts is not None:
            widget_parts.primed(work, row_id, parts)
        return await self.one(work, row_id, NOTHING)

    async def _insert(self, conn: Connection, name: str, parts: list[Row]) -> Row:
        await widget_parts.lock_grommets(conn, parts)
        row = await self.statements.insert(conn, {"name": name})
        await widget_parts.replace(conn, row["id"], parts, fresh=True)
        return row

    async def _update(
        self, conn: Connection, row_id: int, name: str | None, parts: list[Row] | None
    ) -> Row | None:
        if parts is not None:
            await widget_parts.lock_grommets(conn, parts)
        row = await self.statements.update(conn, row_id, {} if name is None else {"name": name})
        if row is not None and parts is not None:
            await widget_parts.replace(conn, row_id, parts, fresh=False)
        return row


widgets = Widgets()
