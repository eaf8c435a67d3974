"""Alembic environment: async, on the URL the caller gives or DATABASE_URL."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from carpool.catalog.models import metadata as catalog_metadata
from carpool.data.engine import sqlalchemy_engine
from carpool.data.idempotency import metadata as idempotency_metadata
from carpool.settings import load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Taken inside the migration transaction so that several workers starting at once migrate once.
_MIGRATION_LOCK = 0x6361_7270_6F6F_6C  # "carpool"


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    configured = load_settings().database_url
    if configured is None:
        raise SystemExit("alembic: set DATABASE_URL (postgresql+asyncpg://...) to migrate")
    return configured


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=[catalog_metadata, idempotency_metadata],
        compare_type=True,
    )
    with context.begin_transaction():
        # A role whose sessions are read-only by default (DB_SESSION_DEFAULTS=role) migrates.
        connection.execute(text("SET TRANSACTION READ WRITE"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        context.run_migrations()


async def _run_online() -> None:
    engine = sqlalchemy_engine(_url())  # the whole URL: sslmode and the rest
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_url(), target_metadata=[catalog_metadata, idempotency_metadata], literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
