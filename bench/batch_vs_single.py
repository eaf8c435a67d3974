"""N single GETs over one keep-alive connection against one batch of the same N GETs.

Run: `make bench` (or `.venv/bin/python bench/batch_vs_single.py`). Prints wall time per N, the
ratio single/batch, and what one more item costs inside a batch against one single request.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, median_seconds, seed_catalog, serve

SIZES = (1, 5, 20, 50)
REPEAT = 30


Row = tuple[int, float, float]


async def measure(base: str) -> list[Row]:
    """(N, N singles in seconds, one batch of N in seconds) for each N."""
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=AUTH) as client:
        await seed_catalog(client, grommets=60, widgets=60)
        rows = []
        for n in SIZES:
            paths = [f"/widgets/{i}" for i in range(1, n + 1)]

            async def singles(paths: list[str] = paths) -> None:
                for path in paths:
                    (await client.get(path)).raise_for_status()

            async def batch(paths: list[str] = paths) -> None:
                response = await client.post("/batch", json={"load": paths})
                response.raise_for_status()

            single_s = await median_seconds(singles, repeat=REPEAT)
            rows.append((n, single_s, await median_seconds(batch, repeat=REPEAT)))
        return rows


def report(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"{'N':>4} {'singles ms':>11} {'batch ms':>9} {'single/batch':>13}")
    for n, single, batch in rows:
        print(f"{n:>4} {single * 1000:>11.2f} {batch * 1000:>9.2f} {single / batch:>12.1f}x")
    one_single = rows[0][1]
    per_item = (rows[-1][2] - rows[0][2]) / (rows[-1][0] - rows[0][0])
    print(
        f"one more item in a batch: {per_item * 1000:.3f} ms;"
        f" one single request: {one_single * 1000:.3f} ms;"
        f" item/single = {per_item / one_single:.2f}"
    )


async def dispatch_overhead(base: str) -> tuple[float, float]:
    """(seconds one more batch item costs, seconds one single request costs) for a route that
    answers without touching the database (`/grommets/0` is a 404 decided before any query):
    what is left is the batch machinery against the HTTP round trip."""
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=AUTH) as client:

        async def single() -> None:
            await client.get("/grommets/0")

        def batch(n: int) -> Callable[[], Awaitable[object]]:
            return lambda: client.post("/batch", json={"requests": [{"path": "/grommets/0"}] * n})

        one = await median_seconds(batch(1), repeat=REPEAT)
        fifty = await median_seconds(batch(50), repeat=REPEAT)
        return (fifty - one) / 49, await median_seconds(single, repeat=REPEAT)


def main() -> None:
    results = {}
    for coalesce in ("false", "true"):
        with serve(COALESCE_LOOKUPS=coalesce) as base:
            results[coalesce] = asyncio.run(measure(base))
            if coalesce == "true":
                per_item, per_single = asyncio.run(dispatch_overhead(base))
    report("GET /widgets/{id}, lookups NOT coalesced (COALESCE_LOOKUPS=false)", results["false"])
    report("GET /widgets/{id}, lookups coalesced (the default)", results["true"])
    print(
        f"\nbatch machinery alone (GET /grommets/0, no database work): {per_item * 1000:.3f} ms"
        f" per item against {per_single * 1000:.3f} ms per single request"
        f" = {per_item / per_single:.3f}"
    )


if __name__ == "__main__":
    main()
