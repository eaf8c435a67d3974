"""A few demo rows for an empty embedded database (never run against a configured one)."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carpool.catalog.grommets import table as grommets
from carpool.catalog.widgets.tables import widget_parts, widgets

_GROMMETS = [
    {"name": "M4 brass", "material": "brass", "diameter_mm": 4.0},
    {"name": "M6 brass", "material": "brass", "diameter_mm": 6.0},
    {"name": "M8 steel", "material": "stainless steel", "diameter_mm": 8.0},
]


async def seed_demo_rows(conn: AsyncConnection) -> None:
    """Insert three grommets and two widgets, if the catalog is empty."""
    if (await conn.execute(select(func.count()).select_from(grommets))).scalar_one():
        return
    ids = (
        (
            await conn.execute(
                insert(grommets).returning(grommets.c.id, sort_by_parameter_order=True), _GROMMETS
            )
        )
        .scalars()
        .all()
    )
    hinge, bracket = (
        (
            await conn.execute(
                insert(widgets).returning(widgets.c.id, sort_by_parameter_order=True),
                [{"name": "hinge"}, {"name": "bracket"}],
            )
        )
        .scalars()
        .all()
    )
    await conn.execute(
        insert(widget_parts),
        [
            {"widget_id": hinge, "grommet_id": ids[0], "quantity": 4},
            {"widget_id": bracket, "grommet_id": ids[1], "quantity": 2},
            {"widget_id": bracket, "grommet_id": ids[2], "quantity": 1},
        ],
    )
