"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is configured."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from carpool.data import migrations

Seeder = Callable[[AsyncConnection], Awaitable[None]]
_SEED_LOCK = 0x6361_7270_6F6F_6D  # serialises demo seeding between workers


def start_embedded(pgdata: Path, *, cleanup_mode: str | None = "stop") -> tuple[Any, str]:
    """Start (or join) the PostgreSQL server whose data lives in `pgdata`; return it and its URL.

    Several processes may call this for one directory: they share one server, and the
    last one to let go stops it (with cleanup_mode "stop").
    """
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR
        # (CI, containers) platformdirs warns and falls back to /tmp, which is fine here.
        warnings.simplefilter("ignore", UserWarning)
        import pgserver  # imported here: production deployments never start it

    pgdata = pgdata.resolve()
    # pgserver creates the directory with exist_ok=False after checking that it is missing:
    # two workers starting together race there. Made here, idempotently, both pass; pgserver
    # then serialises initdb and start under its own inter-process lock.
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)  # type: ignore[attr-defined]
    return server, asyncpg_url(server.get_uri())


def asyncpg_url(uri: str) -> str:
    """pgserver's libpq URI, spelled for SQLAlchemy's asyncpg dialect."""
    return "postgresql+asyncpg://" + uri.split("://", 1)[1]


async def seed_if_empty(url: str, seed: Seeder) -> None:
    """Let `seed` fill an empty database, once, whichever worker gets there first."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEED_LOCK})
            await seed(conn)
    finally:
        await engine.dispose()


async def database_url(
    configured: str | None, *, data_dir: Path, seed: Seeder | None
) -> AsyncIterator[str]:
    """Container resource: the configured URL, or an embedded, migrated, seeded server's."""
    if configured is not None:
        yield configured
        return
    server, url = await asyncio.to_thread(start_embedded, data_dir / "pg")
    try:
        await migrations.upgrade(url)
        if seed is not None:
            await seed_if_empty(url, seed)
        yield url
    finally:
        await asyncio.to_thread(server.cleanup)
