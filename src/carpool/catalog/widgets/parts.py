"""A widget's parts: their statements and their loader (by widget id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, any_, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY

from carpool.catalog.grommets import table as grommets
from carpool.catalog.widgets.tables import widget_parts
from carpool.data.loaders import KeyLoader
from carpool.data.sql import Connection, Row, compile_statement
from carpool.data.unit_of_work import Work
from carpool.errors import FieldError, Invalid

_ID: Any = bindparam("id", type_=BigInteger)
_ANY_IDS = any_(bindparam("ids", type_=ARRAY(BigInteger)))

_BY_WIDGET_IDS = compile_statement(
    select(widget_parts.c.widget_id, widget_parts.c.grommet_id, widget_parts.c.quantity)
    .where(widget_parts.c.widget_id == _ANY_IDS)
    .order_by(widget_parts.c.widget_id, widget_parts.c.grommet_id)
)
_DELETE = compile_statement(delete(widget_parts).where(widget_parts.c.widget_id == _ID))
# All of a widget's parts in one statement: the arrays are unnested side by side.
_INSERT = compile_statement(
    insert(widget_parts).from_select(
        ["widget_id", "grommet_id", "quantity"],
        select(
            _ID,
            func.unnest(bindparam("grommet_ids", type_=ARRAY(BigInteger))),
            func.unnest(bindparam("quantities", type_=ARRAY(Integer))),
        ),
    )
)
# Locked (FOR NO KEY UPDATE): the grommets a widget is about to use cannot vanish meanwhile.
_LOCK_GROMMETS = compile_statement(
    select(grommets.c.id).where(grommets.c.id == _ANY_IDS).with_for_update(key_share=True)
)


async def by_widget_ids(conn: Connection, ids: Sequence[int]) -> dict[int, list[Row]]:
    """Each widget's parts as `{"grommet_id", "quantity"}`, ordered by grommet id."""
    parts: dict[int, list[Row]] = {widget_id: [] for widget_id in ids}
    for row in await conn.rows(_BY_WIDGET_IDS, {"ids": list(ids)}):
        parts[row["widget_id"]].append(
            {"grommet_id": row["grommet_id"], "quantity": row["quantity"]}
        )
    return parts


async def replace(conn: Connection, widget_id: int, parts: list[Row], *, fresh: bool) -> None:
    """Make `parts` the widget's parts (`fresh`: it has none yet)."""
    if not fresh:
        await conn.execute(_DELETE, {"id": widget_id})
    if parts:
        await conn.execute(
            _INSERT,
            {
                "id": widget_id,
                "grommet_ids": [part["grommet_id"] for part in parts],
                "quantities": [part["quantity"] for part in parts],
            },
        )


async def lock_grommets(conn: Connection, parts: list[Row]) -> None:
    """Refuse unknown grommets by position, and keep the known ones from being deleted meanwhile."""
    wanted = [part["grommet_id"] for part in parts]
    if not wanted:
        return
    found = {row["id"] for row in await conn.rows(_LOCK_GROMMETS, {"ids": wanted})}
    errors = [
        FieldError(f"grommet {gid} does not exist", pointer=f"/parts/{index}/grommet_id")
        for index, gid in enumerate(wanted)
        if gid not in found
    ]
    if errors:
        raise Invalid("Some parts name grommets that do not exist.", errors)


def loader(work: Work) -> KeyLoader[int, list[Row]]:
    """Each widget's parts (`{"grommet_id", "quantity"}` by grommet id) by widget id."""
    return work.loader("catalog.widget_parts", _new_loader)


def primed(work: Work, widget_id: int, parts: list[Row]) -> None:
    """After a write: `parts` are the widget's parts now, in the order a load answers them."""
    stored = [{"grommet_id": p["grommet_id"], "quantity": p["quantity"]} for p in parts]
    loader(work).prime(widget_id, sorted(stored, key=lambda p: p["grommet_id"]))


def _new_loader(work: Work) -> KeyLoader[int, list[Row]]:
    async def fetch(ids: list[int]) -> dict[int, list[Row]]:
        return await work.run(by_widget_ids, ids)

    return KeyLoader(fetch, coalesce=work.coalesce, source=str(widget_parts.name))
