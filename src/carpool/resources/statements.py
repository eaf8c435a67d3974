"""The standard statements of a table keyed by `id`, built from the table alone.

Each is built with SQLAlchemy and compiled once (at import, or once per set of columns an
insert or update names) to asyncpg's SQL; each method takes the unit of work's `Connection`
first, so that `work.run(statements.by_ids, ids)` runs it as part of the unit. A violated
constraint becomes the domain error a client can act on (409 or 422), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Integer, Table, any_, bindparam, delete, func, insert, select
from sqlalchemy import update as update_statement
from sqlalchemy.dialects.postgresql import ARRAY

from carpool.data.sql import Connection, Row, Statement, compile_statement
from carpool.errors import Conflict, FieldError, Invalid

_ID: Any = bindparam("id", type_=BigInteger)
_AFTER: Any = bindparam("after", type_=BigInteger)
_LIMIT: Any = bindparam("limit", type_=Integer)
# `= ANY(:ids)` with one array parameter: one plan whatever the count.
_ANY_IDS = any_(bindparam("ids", type_=ARRAY(BigInteger)))
UPDATED_AT = "updated_at"
"""A column an update sets to now() by itself, when the table has it."""
Missing = Callable[[object], str]
"""What to say of a value a foreign-key column names but that does not exist."""


class Statements:
    """By ids, a keyset page, the row lock If-Match needs, insert, update and delete.

    Every statement answers the table's columns in the table's order: the rows a resource
    answers. `singular` names one row in messages ("part"); `in_use` is the 409 of a
    delete another table's foreign key refuses (`{id}` is the row's id); `missing` says, by
    foreign-key column, what to answer for a value that names nothing (a 422 there).
    """

    def __init__(
        self,
        table: Table,
        *,
        singular: str,
        in_use: str | None = None,
        missing: Mapping[str, Missing] | None = None,
    ) -> None:
        self.table = table
        self.singular = singular
        self.in_use = in_use
        self._missing = dict(missing or {})
        columns = tuple(table.c)
        key = table.c.id
        self.by_ids_sql = compile_statement(select(*columns).where(key == _ANY_IDS))
        self.page_sql = compile_statement(
            select(*columns).where(key > _AFTER).order_by(key).limit(_LIMIT)
        )
        # FOR UPDATE until the transaction ends: a concurrent writer waits, then reads the
        # version this one leaves (no lost update).
        self.lock_sql = compile_statement(select(*columns).where(key == _ID).with_for_update())
        self.delete_sql = compile_statement(delete(table).where(key == _ID).returning(key))
        self._inserts: dict[tuple[str, ...], Statement] = {}
        self._updates: dict[tuple[str, ...], Statement] = {}

    def insert_sql(self, names: tuple[str, ...]) -> Statement:
        """INSERT of these columns (the others take their defaults), answering the row."""
        found = self._inserts.get(names)
        if found is None:
            values = {name: bindparam(name, type_=self.table.c[name].type) for name in names}
            statement = insert(self.table).values(values).returning(*self.table.c)
            found = self._inserts[names] = compile_statement(statement)
        return found

    def update_sql(self, names: tuple[str, ...]) -> Statement:
        """UPDATE of these columns by id (and `updated_at`), answering the row."""
        found = self._updates.get(names)
        if found is None:
            table = self.table
            values: dict[str, Any] = {
                name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names
            }
            if UPDATED_AT in table.c:
                values[UPDATED_AT] = func.now()
            statement = (
                update_statement(table).where(table.c.id == _ID).values(values).returning(*table.c)
            )
            found = self._updates[names] = compile_statement(statement)
        return found

    async def by_ids(self, conn: Connection, ids: Sequence[int]) -> dict[int, Row]:
        """The rows among `ids` that exist, by id."""
        rows = await conn.rows(self.by_ids_sql, {"ids": list(ids)})
        return {row["id"]: row for row in rows}

    async def page(self, conn: Connection, *, after: int, limit: int) -> list[Row]:
        """Up to `limit` rows with id > `after`, by id."""
        return await conn.rows(self.page_sql, {"after": after, "limit": limit})

    async def lock(self, conn: Connection, row_id: int) -> Row | None:
        """The row, locked FOR UPDATE until the transaction ends; None if there is none."""
        return await conn.row(self.lock_sql, {"id": row_id})

    async def insert(self, conn: Connection, values: Mapping[str, Any]) -> Row:
        """Insert a row; a taken unique value is a Conflict, an unknown reference Invalid."""
        try:
            row = await conn.row(self.insert_sql(tuple(sorted(values))), values)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise self._refusal(exc, values) from None
        assert row is not None
        return row

    async def update(self, conn: Connection, row_id: int, values: Mapping[str, Any]) -> Row | None:
        """Change a row's columns (`updated_at` too); None if there is no such row."""
        params = {f"v_{name}": value for name, value in values.items()}
        params["id"] = row_id
        try:
            return await conn.row(self.update_sql(tuple(sorted(values))), params)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise self._refusal(exc, values) from None

    async def delete(self, conn: Connection, row_id: int) -> bool:
        """Delete a row; False if there was none. One another table still names is a Conflict."""
        try:
            return await conn.row(self.delete_sql, {"id": row_id}) is not None
        except asyncpg.ForeignKeyViolationError:
            if self.in_use is None:
                raise
            raise Conflict(self.in_use.format(id=row_id)) from None

    def _refusal(self, exc: asyncpg.IntegrityConstraintViolationError, values: Any) -> Exception:
        # asyncpg's errors are untyped: the constraint they name, read as text.
        constraint = str(getattr(exc, "constraint_name", None) or "")
        column = _column_of(self.table, constraint)
        if isinstance(exc, asyncpg.UniqueViolationError) and column is not None:
            named = "named" if column == "name" else f"with {column}"
            return Conflict(f'a {self.singular} {named} "{values.get(column)}" already exists')
        if isinstance(exc, asyncpg.ForeignKeyViolationError) and column is not None:
            value = values.get(column)
            say = self._missing.get(column)
            text = say(value) if say is not None else f"{column} {value} does not exist"
            error = FieldError(text, pointer=f"/{column}")
            return Invalid(f"The {self.singular} names something that does not exist.", [error])
        refused: Exception = exc
        return refused


def _column_of(table: Table, constraint: str) -> str | None:
    """The column a one-column constraint of `table` is on (names follow the metadata's
    naming convention: `<table>_<column>_key`, `<table>_<column>_fkey`)."""
    for column in table.c:
        if constraint in (f"{table.name}_{column.name}_key", f"{table.name}_{column.name}_fkey"):
            return column.name
    return None
