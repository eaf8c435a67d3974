"""Every SQL statement of the catalog; each takes the unit of work's connection first.

Statements are built with SQLAlchemy and compiled once (at import, or once per shape of a
PATCH) to asyncpg's SQL; they run on the unit's asyncpg connection as prepared statements.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Integer, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from carpool.catalog.models import grommets, widget_parts, widgets
from carpool.data.sql import Connection, Row, Statement, compile_statement
from carpool.errors import Conflict, FieldError, Invalid

__all__ = ["Row"]

GROMMET_COLUMNS = (
    grommets.c.id,
    grommets.c.name,
    grommets.c.material,
    grommets.c.diameter_mm,
    grommets.c.created_at,
    grommets.c.updated_at,
)
WIDGET_COLUMNS = (widgets.c.id, widgets.c.name, widgets.c.created_at, widgets.c.updated_at)

# `= ANY(:ids)` with one array parameter: one plan whatever the count.
_ANY_IDS = any_(bindparam("ids", type_=ARRAY(BigInteger)))
_ID: Any = bindparam("id", type_=BigInteger)
_AFTER: Any = bindparam("after", type_=BigInteger)
_LIMIT: Any = bindparam("limit", type_=Integer)

_GROMMETS_BY_IDS = compile_statement(select(*GROMMET_COLUMNS).where(grommets.c.id == _ANY_IDS))
_WIDGETS_BY_IDS = compile_statement(select(*WIDGET_COLUMNS).where(widgets.c.id == _ANY_IDS))
_PARTS_BY_WIDGET_IDS = compile_statement(
    select(widget_parts.c.widget_id, widget_parts.c.grommet_id, widget_parts.c.quantity)
    .where(widget_parts.c.widget_id == _ANY_IDS)
    .order_by(widget_parts.c.widget_id, widget_parts.c.grommet_id)
)
_GROMMET_PAGE = compile_statement(
    select(*GROMMET_COLUMNS).where(grommets.c.id > _AFTER).order_by(grommets.c.id).limit(_LIMIT)
)
_WIDGET_PAGE = compile_statement(
    select(*WIDGET_COLUMNS).where(widgets.c.id > _AFTER).order_by(widgets.c.id).limit(_LIMIT)
)
_DELETE_GROMMET = compile_statement(
    delete(grommets).where(grommets.c.id == _ID).returning(grommets.c.id)
)
_DELETE_WIDGET = compile_statement(
    delete(widgets).where(widgets.c.id == _ID).returning(widgets.c.id)
)
_DELETE_PARTS = compile_statement(delete(widget_parts).where(widget_parts.c.widget_id == _ID))
_INSERT_WIDGET = compile_statement(
    insert(widgets).values(name=bindparam("name")).returning(*WIDGET_COLUMNS)
)
# All of a widget's parts in one statement: the arrays are unnested side by side.
_INSERT_PARTS = compile_statement(
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


@functools.cache
def _insert_grommet(columns: tuple[str, ...]) -> Statement:
    return compile_statement(
        insert(grommets)
        .values({name: bindparam(name, type_=grommets.c[name].type) for name in columns})
        .returning(*GROMMET_COLUMNS)
    )


@functools.cache
def _update(table_name: str, columns: tuple[str, ...]) -> Statement:
    table = grommets if table_name == "grommets" else widgets
    returning = GROMMET_COLUMNS if table is grommets else WIDGET_COLUMNS
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns
    }
    return compile_statement(
        update(table)
        .where(table.c.id == _ID)
        .values(**values, updated_at=func.now())
        .returning(*returning)
    )


def _sqlstate(exc: asyncpg.PostgresError) -> str:
    return str(getattr(exc, "sqlstate", None) or "")


# -- grommets ---------------------------------------------------------------------------------


async def grommet_page(conn: Connection, *, after: int, limit: int) -> list[Row]:
    """Up to `limit` grommets with id > `after`, by id."""
    return await conn.rows(_GROMMET_PAGE, {"after": after, "limit": limit})


async def grommets_by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Row]:
    """The grommets among `ids` that exist, by id."""
    rows = await conn.rows(_GROMMETS_BY_IDS, {"ids": list(ids)})
    return {row["id"]: row for row in rows}


async def create_grommet(conn: Connection, values: dict[str, Any]) -> Row:
    """Insert a grommet; a taken name is a Conflict."""
    statement = _insert_grommet(tuple(sorted(values)))
    try:
        row = await conn.row(statement, values)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _name_taken("grommet", values.get("name"), exc) from None
    assert row is not None
    return row


async def update_grommet(conn: Connection, grommet_id: int, values: dict[str, Any]) -> Row | None:
    """Change a grommet; None if it does not exist; a taken name is a Conflict."""
    statement = _update("grommets", tuple(sorted(values)))
    params = {f"v_{name}": value for name, value in values.items()}
    params["id"] = grommet_id
    try:
        return await conn.row(statement, params)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _name_taken("grommet", values.get("name"), exc) from None


async def delete_grommet(conn: Connection, grommet_id: int) -> bool:
    """Delete a grommet; False if it does not exist; one still used by a widget is a Conflict."""
    try:
        return await conn.row(_DELETE_GROMMET, {"id": grommet_id}) is not None
    except asyncpg.ForeignKeyViolationError:
        raise Conflict(
            f"grommet {grommet_id} is used by a widget; remove it from every widget first"
        ) from None


# -- widgets ----------------------------------------------------------------------------------


async def widget_page(conn: Connection, *, after: int, limit: int) -> list[Row]:
    """Up to `limit` widgets (without parts) with id > `after`, by id."""
    return await conn.rows(_WIDGET_PAGE, {"after": after, "limit": limit})


async def widgets_by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Row]:
    """The widgets (without parts) among `ids` that exist, by id."""
    rows = await conn.rows(_WIDGETS_BY_IDS, {"ids": list(ids)})
    return {row["id"]: row for row in rows}


async def parts_by_widget_ids(conn: Connection, ids: Sequence[int]) -> dict[int, list[Row]]:
    """Each widget's parts as `{"grommet_id", "quantity"}`, ordered by grommet id."""
    parts: dict[int, list[Row]] = {widget_id: [] for widget_id in ids}
    for row in await conn.rows(_PARTS_BY_WIDGET_IDS, {"ids": list(ids)}):
        parts[row["widget_id"]].append(
            {"grommet_id": row["grommet_id"], "quantity": row["quantity"]}
        )
    return parts


async def create_widget(conn: Connection, name: str, parts: list[Row]) -> Row:
    """Insert a widget and its parts; a taken name is a Conflict, an unknown grommet Invalid."""
    await _lock_grommets(conn, parts)
    try:
        row = await conn.row(_INSERT_WIDGET, {"name": name})
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _name_taken("widget", name, exc) from None
    assert row is not None
    await _insert_parts(conn, row["id"], parts)
    return row


async def update_widget(
    conn: Connection, widget_id: int, *, name: str | None, parts: list[Row] | None
) -> Row | None:
    """Rename a widget and/or replace its parts; None if it does not exist."""
    if parts is not None:
        await _lock_grommets(conn, parts)
    statement = _update("widgets", () if name is None else ("name",))
    params: dict[str, Any] = {"id": widget_id, "v_name": name}
    try:
        row = await conn.row(statement, params)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _name_taken("widget", name, exc) from None
    if row is not None and parts is not None:
        await conn.execute(_DELETE_PARTS, {"id": widget_id})
        await _insert_parts(conn, widget_id, parts)
    return row


async def delete_widget(conn: Connection, widget_id: int) -> bool:
    """Delete a widget and its parts; False if it does not exist."""
    return await conn.row(_DELETE_WIDGET, {"id": widget_id}) is not None


async def _insert_parts(conn: Connection, widget_id: int, parts: list[Row]) -> None:
    if parts:
        await conn.execute(
            _INSERT_PARTS,
            {
                "id": widget_id,
                "grommet_ids": [part["grommet_id"] for part in parts],
                "quantities": [part["quantity"] for part in parts],
            },
        )


async def _lock_grommets(conn: Connection, parts: list[Row]) -> None:
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


def _name_taken(kind: str, name: object, exc: Exception) -> Exception:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict(f'a {kind} named "{name}" already exists')
    return exc


# -- conditional writes (If-Match / If-None-Match, issue 13) ----------------------------------
# The row a conditional write compares against, locked until its transaction ends: another
# writer waits, and then reads the version this one leaves (no lost update).

_GROMMET_FOR_UPDATE = compile_statement(
    select(*GROMMET_COLUMNS).where(grommets.c.id == _ID).with_for_update()
)
_WIDGET_FOR_UPDATE = compile_statement(
    select(*WIDGET_COLUMNS).where(widgets.c.id == _ID).with_for_update()
)


async def lock_grommet(conn: Connection, grommet_id: int) -> Row | None:
    """The grommet's row, locked FOR UPDATE until the transaction ends; None if none."""
    return await conn.row(_GROMMET_FOR_UPDATE, {"id": grommet_id})


async def lock_widget(conn: Connection, widget_id: int) -> Row | None:
    """The widget's row (without parts), locked FOR UPDATE: its parts cannot change meanwhile
    either, since every write of them locks the widget first. None if none."""
    return await conn.row(_WIDGET_FOR_UPDATE, {"id": widget_id})
