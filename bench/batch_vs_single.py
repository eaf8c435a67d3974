"""N single GETs over one keep-alive connection against one batch of the same N GETs.

Run: `make bench` (or `.venv/bin/python bench/batch_vs_single.py`). Prints wall time per N, the
ratio single/batch, and what one more item costs inside a batch against one single request.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import median_seconds, seed_catalog, serve

SIZES = (1, 5, 20, 50)
REPEAT = 30


async def measure(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
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

            rows.append(
                (
                    n,
                    await median_seconds(singles, repeat=REPEAT),
                    await median_seconds(batch, repeat=REPEAT),
                )
            )

    print(f"{'N':>4} {'singles ms':>11} {'batch ms':>9} {'single/batch':>13}")
    for n, single, batch in rows:
        print(f"{n:>4} {single * 1000:>11.2f} {batch * 1000:>9.2f} {single / batch:>12.1f}x")
    one_single = rows[0][1]
    per_item = (rows[-1][2] - rows[0][2]) / (rows[-1][0] - rows[0][0])
    print(
        f"\none more item in a batch: {per_item * 1000:.3f} ms;"
        f" one single request: {one_single * 1000:.3f} ms;"
        f" item/single = {per_item / one_single:.2f}"
    )


def main() -> None:
    with serve() as base:
        asyncio.run(measure(base))


if __name__ == "__main__":
    main()
