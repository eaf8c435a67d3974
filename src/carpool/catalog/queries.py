"""Every SQL statement of the catalog; each takes the unit of work's connection first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from carpool.catalog.models import grommets, widget_parts, widgets
from carpool.errors import Conflict, FieldError, Invalid

Row = dict[str, Any]
GROMMET_COLUMNS = (
    grommets.c.id,
    grommets.c.name,
    grommets.c.material,
    grommets.c.diameter_mm,
    grommets.c.created_at,
    grommets.c.updated_at,
)
WIDGET_COLUMNS = (widgets.c.id, widgets.c.name, widgets.c.created_at, widgets.c.updated_at)
_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"


def _ids(values: Iterable[int]) -> Any:
    """`= ANY(:ids)` with one array parameter: one plan whatever the count."""
    return any_(bindparam("ids", list(values), type_=ARRAY(BigInteger)))


# The hot reads are built once: SQLAlchemy then skips building them and their cache keys
# on every call (a measurable share of a one-row GET), and asyncpg reuses one prepared plan.
_ANY_IDS = any_(bindparam("ids", type_=ARRAY(BigInteger)))
_GROMMETS_BY_IDS = select(*GROMMET_COLUMNS).where(grommets.c.id == _ANY_IDS)
_WIDGETS_BY_IDS = select(*WIDGET_COLUMNS).where(widgets.c.id == _ANY_IDS)
_PARTS_BY_WIDGET_IDS = (
    select(widget_parts.c.widget_id, widget_parts.c.grommet_id, widget_parts.c.quantity)
    .where(widget_parts.c.widget_id == _ANY_IDS)
    .order_by(widget_parts.c.widget_id, widget_parts.c.grommet_id)
)
_AFTER: Any = bindparam("after", type_=BigInteger)
_LIMIT: Any = bindparam("limit", type_=Integer)
_GROMMET_PAGE = (
    select(*GROMMET_COLUMNS).where(grommets.c.id > _AFTER).order_by(grommets.c.id).limit(_LIMIT)
)
_WIDGET_PAGE = (
    select(*WIDGET_COLUMNS).where(widgets.c.id > _AFTER).order_by(widgets.c.id).limit(_LIMIT)
)


def _sqlstate(exc: IntegrityError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


async def _rows(
    conn: AsyncConnection, statement: Any, params: dict[str, Any] | None = None
) -> list[Row]:
    result = await conn.execute(statement, params)
    # Plain str keys: SQLAlchemy's are a str subclass, which orjson refuses as dict keys.
    keys = [str(key) for key in result.keys()]
    return [dict(zip(keys, row, strict=True)) for row in result]


async def _one_or_none(conn: AsyncConnection, statement: Any) -> Row | None:
    rows = await _rows(conn, statement)
    return rows[0] if rows else None


# -- grommets ---------------------------------------------------------------------------------


async def grommet_page(conn: AsyncConnection, *, after: int, limit: int) -> list[Row]:
    """Up to `limit` grommets with id > `after`, by id."""
    return await _rows(conn, _GROMMET_PAGE, {"after": after, "limit": limit})


async def grommets_by_ids(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Row]:
    """The grommets among `ids` that exist, by id."""
    rows = await _rows(conn, _GROMMETS_BY_IDS, {"ids": list(ids)})
    return {row["id"]: row for row in rows}


async def create_grommet(conn: AsyncConnection, values: dict[str, Any]) -> Row:
    """Insert a grommet; a taken name is a Conflict."""
    stmt = insert(grommets).values(**values).returning(*GROMMET_COLUMNS)
    try:
        row = await _one_or_none(conn, stmt)
    except IntegrityError as exc:
        raise _name_taken("grommet", values.get("name"), exc) from None
    assert row is not None
    return row


async def update_grommet(
    conn: AsyncConnection, grommet_id: int, values: dict[str, Any]
) -> Row | None:
    """Change a grommet; None if it does not exist; a taken name is a Conflict."""
    stmt = (
        update(grommets)
        .where(grommets.c.id == grommet_id)
        .values(**values, updated_at=func.now())
        .returning(*GROMMET_COLUMNS)
    )
    try:
        return await _one_or_none(conn, stmt)
    except IntegrityError as exc:
        raise _name_taken("grommet", values.get("name"), exc) from None


async def delete_grommet(conn: AsyncConnection, grommet_id: int) -> bool:
    """Delete a grommet; False if it does not exist; one still used by a widget is a Conflict."""
    stmt = delete(grommets).where(grommets.c.id == grommet_id).returning(grommets.c.id)
    try:
        return (await conn.execute(stmt)).first() is not None
    except IntegrityError as exc:
        if _sqlstate(exc) == _FOREIGN_KEY_VIOLATION:
            raise Conflict(
                f"grommet {grommet_id} is used by a widget; remove it from every widget first"
            ) from None
        raise


# -- widgets ----------------------------------------------------------------------------------


async def widget_page(conn: AsyncConnection, *, after: int, limit: int) -> list[Row]:
    """Up to `limit` widgets (without parts) with id > `after`, by id."""
    return await _rows(conn, _WIDGET_PAGE, {"after": after, "limit": limit})


async def widgets_by_ids(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Row]:
    """The widgets (without parts) among `ids` that exist, by id."""
    rows = await _rows(conn, _WIDGETS_BY_IDS, {"ids": list(ids)})
    return {row["id"]: row for row in rows}


async def parts_by_widget_ids(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, list[Row]]:
    """Each widget's parts as `{"grommet_id", "quantity"}`, ordered by grommet id."""
    parts: dict[int, list[Row]] = {widget_id: [] for widget_id in ids}
    result = await conn.execute(_PARTS_BY_WIDGET_IDS, {"ids": list(ids)})
    for row in result.all():
        parts[row.widget_id].append({"grommet_id": row.grommet_id, "quantity": row.quantity})
    return parts


async def create_widget(conn: AsyncConnection, name: str, parts: list[Row]) -> Row:
    """Insert a widget and its parts; a taken name is a Conflict, an unknown grommet Invalid."""
    await _lock_grommets(conn, parts)
    stmt = insert(widgets).values(name=name).returning(*WIDGET_COLUMNS)
    try:
        row = await _one_or_none(conn, stmt)
    except IntegrityError as exc:
        raise _name_taken("widget", name, exc) from None
    assert row is not None
    await _insert_parts(conn, row["id"], parts)
    return row


async def update_widget(
    conn: AsyncConnection, widget_id: int, *, name: str | None, parts: list[Row] | None
) -> Row | None:
    """Rename a widget and/or replace its parts; None if it does not exist."""
    if parts is not None:
        await _lock_grommets(conn, parts)
    values: dict[str, Any] = {"updated_at": func.now()}
    if name is not None:
        values["name"] = name
    stmt = (
        update(widgets).where(widgets.c.id == widget_id).values(**values).returning(*WIDGET_COLUMNS)
    )
    try:
        row = await _one_or_none(conn, stmt)
    except IntegrityError as exc:
        raise _name_taken("widget", name, exc) from None
    if row is not None and parts is not None:
        await conn.execute(delete(widget_parts).where(widget_parts.c.widget_id == widget_id))
        await _insert_parts(conn, widget_id, parts)
    return row


async def delete_widget(conn: AsyncConnection, widget_id: int) -> bool:
    """Delete a widget and its parts; False if it does not exist."""
    stmt = delete(widgets).where(widgets.c.id == widget_id).returning(widgets.c.id)
    return (await conn.execute(stmt)).first() is not None


async def _insert_parts(conn: AsyncConnection, widget_id: int, parts: list[Row]) -> None:
    if parts:
        rows = [{"widget_id": widget_id, **part} for part in parts]
        await conn.execute(insert(widget_parts).values(rows))


async def _lock_grommets(conn: AsyncConnection, parts: list[Row]) -> None:
    """Refuse unknown grommets by position, and keep the known ones from being deleted meanwhile."""
    wanted = [part["grommet_id"] for part in parts]
    if not wanted:
        return
    stmt = (
        select(grommets.c.id).where(grommets.c.id == _ids(wanted)).with_for_update(key_share=True)
    )
    found = set((await conn.execute(stmt)).scalars())
    errors = [
        FieldError(f"grommet {gid} does not exist", pointer=f"/parts/{index}/grommet_id")
        for index, gid in enumerate(wanted)
        if gid not in found
    ]
    if errors:
        raise Invalid("Some parts name grommets that do not exist.", errors)


def _name_taken(kind: str, name: object, exc: IntegrityError) -> Exception:
    if _sqlstate(exc) == _UNIQUE_VIOLATION:
        return Conflict(f'a {kind} named "{name}" already exists')
    return exc


# -- conditional writes (If-Match / If-None-Match, issue 13) ----------------------------------
# The row a conditional write compares against, locked until its transaction ends: another
# writer waits, and then reads the version this one leaves (no lost update).

_GROMMET_FOR_UPDATE = (
    select(*GROMMET_COLUMNS).where(grommets.c.id == bindparam("id")).with_for_update()
)
_WIDGET_FOR_UPDATE = (
    select(*WIDGET_COLUMNS).where(widgets.c.id == bindparam("id")).with_for_update()
)


async def lock_grommet(conn: AsyncConnection, grommet_id: int) -> Row | None:
    """The grommet's row, locked FOR UPDATE until the transaction ends; None if none."""
    rows = await _rows(conn, _GROMMET_FOR_UPDATE, {"id": grommet_id})
    return rows[0] if rows else None


async def lock_widget(conn: AsyncConnection, widget_id: int) -> Row | None:
    """The widget's row (without parts), locked FOR UPDATE: its parts cannot change meanwhile
    either, since every write of them locks the widget first. None if none."""
    rows = await _rows(conn, _WIDGET_FOR_UPDATE, {"id": widget_id})
    return rows[0] if rows else None
