"""The alembic migrations: they go up, down and up again, and agree with the models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from carpool.catalog.models import metadata as catalog_metadata
from carpool.data import migrations
from carpool.data.change_triggers import EVENTS, trigger_name
from carpool.data.idempotency import metadata as idempotency_metadata

METADATA = [catalog_metadata, idempotency_metadata]
# Every table the models define: the migrations must make exactly these.
TABLES = {table.name for schema in METADATA for table in schema.sorted_tables}
# Tables whose writes notify no live answer, each with the reason.
NOT_NOTIFIED = {
    "idempotency_keys": "the pipeline's own record of answers; no route reads it",
}


@pytest.fixture
async def empty_database(database_url: str, admin_engine: AsyncEngine) -> AsyncIterator[str]:
    """The URL of a brand-new, empty database, dropped after the test."""
    name = f"carpool_migrations_{uuid.uuid4().hex[:12]}"
    autocommit = admin_engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with autocommit.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def inspect_database(url: str, look: Any) -> Any:
    """`look(sync_connection)` run on the database at `url`."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, METADATA))  # type: ignore[arg-type]


async def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_database: str) -> None:
    head = migrations.head_revision(empty_database)
    assert head is not None
    assert await inspect_database(empty_database, _tables) == set()

    await asyncio.to_thread(migrations.upgrade_sync, empty_database)
    assert await inspect_database(empty_database, _tables) == TABLES | {"alembic_version"}
    assert await inspect_database(empty_database, _revision) == head

    await asyncio.to_thread(migrations.downgrade_sync, empty_database)
    assert await inspect_database(empty_database, _tables) == {"alembic_version"}
    assert await inspect_database(empty_database, _revision) is None

    await asyncio.to_thread(migrations.upgrade_sync, empty_database)
    assert await inspect_database(empty_database, _tables) == TABLES | {"alembic_version"}
    assert await inspect_database(empty_database, _revision) == head
    assert await inspect_database(empty_database, _differences) == []


async def test_models_and_migrations_agree(database_url: str) -> None:
    # The session database was migrated to head by the fixtures, like a production one.
    assert await inspect_database(database_url, _differences) == []
    assert await inspect_database(database_url, _revision) == migrations.head_revision(database_url)


async def test_the_comparison_would_notice_a_drift(empty_database: str) -> None:
    """The check above can fail: a database missing an index is reported."""
    await asyncio.to_thread(migrations.upgrade_sync, empty_database)
    engine = create_async_engine(empty_database, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP INDEX widget_parts_grommet_id_idx"))
    finally:
        await engine.dispose()
    differences = await inspect_database(empty_database, _differences)
    assert [diff[0] for diff in differences] == ["add_index"]


def _notify_triggers(conn: Connection) -> dict[str, set[str]]:
    """The carpool_notify_by_* triggers of each table, by table."""
    rows = conn.execute(
        text(
            "SELECT c.relname, t.tgname FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND p.proname LIKE 'carpool_notify_by_%'"
        )
    )
    found: dict[str, set[str]] = {}
    for table, trigger in rows:
        found.setdefault(table, set()).add(trigger)
    return found


async def test_every_table_of_the_models_notifies_its_changes(database_url: str) -> None:
    """Live answers are pushed only for tables whose writes NOTIFY: a table a migration made
    without `notify_changes(table)` fails here (unless listed, with its reason)."""
    assert set(NOT_NOTIFIED) <= TABLES, "an exclusion names no table"
    assert _without_triggers(await inspect_database(database_url, _notify_triggers)) == []


def _without_triggers(found: dict[str, set[str]]) -> list[str]:
    """The tables that lack a change trigger they should have (or have one excluded)."""
    wrong = [
        table
        for table in sorted(TABLES - set(NOT_NOTIFIED))
        if not found.get(table, set()) >= {trigger_name(table, event) for event in EVENTS}
    ]
    return wrong + sorted(table for table in NOT_NOTIFIED if table in found)


async def test_the_trigger_check_would_notice_a_table_without_them(empty_database: str) -> None:
    await asyncio.to_thread(migrations.upgrade_sync, empty_database)
    engine = create_async_engine(empty_database, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {trigger_name('widgets', 'update')} ON widgets"))
    finally:
        await engine.dispose()
    assert _without_triggers(await inspect_database(empty_database, _notify_triggers)) == [
        "widgets"
    ]
