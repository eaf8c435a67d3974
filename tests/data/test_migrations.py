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
from carpool.data.idempotency import metadata as idempotency_metadata

CATALOG_TABLES = {"grommets", "widgets", "widget_parts", "idempotency_keys"}
METADATA = [catalog_metadata, idempotency_metadata]


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
    assert await inspect_database(empty_database, _tables) == CATALOG_TABLES | {"alembic_version"}
    assert await inspect_database(empty_database, _revision) == head

    await asyncio.to_thread(migrations.downgrade_sync, empty_database)
    assert await inspect_database(empty_database, _tables) == {"alembic_version"}
    assert await inspect_database(empty_database, _revision) is None

    await asyncio.to_thread(migrations.upgrade_sync, empty_database)
    assert await inspect_database(empty_database, _tables) == CATALOG_TABLES | {"alembic_version"}
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
