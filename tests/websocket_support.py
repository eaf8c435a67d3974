"""Helpers of the WebSocket tests: slow frames, and what the database says about them."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def lingering_work(admin_engine: AsyncEngine, *, within: float = 10.0) -> list[Any]:
    """Sessions still in a transaction or still sleeping, once they had `within` s to end."""
    query = text(
        "SELECT pid, state, query FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND (state LIKE 'idle in transaction%'"
        "      OR (state = 'active' AND query ILIKE '%pg_sleep%'))"
    )
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with admin_engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        if not rows or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def wait_for_sleeper(admin_engine: AsyncEngine) -> None:
    """Returns once some session is inside pg_sleep (the slow frame is mid-request)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state = 'active' AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(10):
        while True:
            async with admin_engine.connect() as conn:
                if (await conn.execute(query)).scalar_one():
                    return
            await asyncio.sleep(0.02)


def slow_write_batch(frame_id: str, name: str, seconds: float) -> dict[str, Any]:
    """A batch frame that writes a grommet, then sleeps in the database (atomic)."""
    grommet = {"name": name, "material": "brass", "diameter_mm": 5}
    return {
        "id": frame_id,
        "batch": {
            "requests": [
                {"method": "POST", "path": "/grommets", "body": grommet},
                {"path": f"/_probe/sleep?s={seconds}"},
            ]
        },
    }
