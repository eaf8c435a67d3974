"""Run and check alembic migrations from code, off the event loop (alembic's env runs its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from carpool.data.sql import Connection

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(url: str) -> Config:
    """An alembic Config for this project pointed at `url`."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (blocking; no running loop here)."""
    command.upgrade(alembic_config(url), revision)


def downgrade_sync(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision` (blocking)."""
    command.downgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate from async code, without blocking or nesting event loops."""
    await asyncio.to_thread(upgrade_sync, url, revision)


def head_revision(url: str) -> str | None:
    """The newest revision the project's migrations define."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(conn: Connection) -> str | None:
    """The revision the connected database is at (None for an unmigrated one)."""
    if not await conn.value("SELECT to_regclass('alembic_version') IS NOT NULL"):
        return None
    found = await conn.rows("SELECT version_num FROM alembic_version")
    if len(found) > 1:
        raise RuntimeError(f"the database has several migration heads: {found}")
    return str(found[0]["version_num"]) if found else None
