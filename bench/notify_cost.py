"""What announcing changes costs a write: triggers against app-side NOTIFY against nothing.

Run: `.venv/bin/python bench/notify_cost.py`. An embedded, migrated database; one asyncpg
connection runs 2,000 one-row UPDATE transactions (as `PATCH /grommets/{id}` does) three ways,
interleaved over 5 rounds, median round reported:
- triggers off (`ALTER TABLE ... DISABLE TRIGGER USER`): the cost of the write alone;
- triggers on (what carpool ships: the statement-level trigger NOTIFYs at COMMIT);
- triggers off, the app sending `SELECT pg_notify(...)` itself after each write (the
  alternative: the write functions announce their changes).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from carpool.data import embedded, migrations
from carpool.data.changes import connect_kwargs

WRITES = 2_000
ROUNDS = 5
UPDATE = "UPDATE grommets SET diameter_mm = $1, updated_at = now() WHERE id = $2"


async def writes(conn: asyncpg.Connection, *, app_notify: bool) -> float:
    started = time.perf_counter()
    for n in range(WRITES):
        async with conn.transaction():
            await conn.execute(UPDATE, 1.0 + n % 50, 1 + n % 100)
            if app_notify:
                payload = f'{{"table": "grommets", "ids": [{1 + n % 100}]}}'
                await conn.execute("SELECT pg_notify('carpool_changes', $1)", payload)
    return (time.perf_counter() - started) / WRITES * 1e6


async def run(url: str) -> None:
    conn = await asyncpg.connect(**connect_kwargs(url))
    await conn.execute(
        "INSERT INTO grommets (name, material, diameter_mm)"
        " SELECT 'g' || n, 'brass', 1 FROM generate_series(1, 100) AS n"
    )
    listener = await asyncpg.connect(**connect_kwargs(url))  # notifications have a reader
    heard = 0

    def count(*_: object) -> None:
        nonlocal heard
        heard += 1

    await listener.add_listener("carpool_changes", count)
    results: dict[str, list[float]] = {"no announcement": [], "trigger": [], "app NOTIFY": []}
    for _ in range(ROUNDS):
        await conn.execute("ALTER TABLE grommets DISABLE TRIGGER USER")
        results["no announcement"].append(await writes(conn, app_notify=False))
        results["app NOTIFY"].append(await writes(conn, app_notify=True))
        await conn.execute("ALTER TABLE grommets ENABLE TRIGGER USER")
        results["trigger"].append(await writes(conn, app_notify=False))
    await asyncio.sleep(1)
    print(f"{WRITES} one-row UPDATE transactions, median of {ROUNDS} rounds, one connection")
    base = statistics.median(results["no announcement"])
    for name, times in results.items():
        median = statistics.median(times)
        print(f"  {name:16} {median:7.0f} µs/write   {median / base:5.2f}x")
    print(f"  notifications heard: {heard}")
    await listener.close()
    await conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="carpool-bench-") as tmp:
        server, url = embedded.start_embedded(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            migrations.upgrade_sync(url)
            asyncio.run(run(url))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
