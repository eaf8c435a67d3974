"""Fairness: `/health` latency while four maximal batches run, against `/health` idle.

Run: `make bench` (or `.venv/bin/python bench/fairness.py`). Four clients each send, again and
again, a batch of BATCH_MAX_ITEMS (50) items of the largest page (`GET /grommets?limit=500`);
a fifth asks `/health` every 20 ms. Prints /health's p50, p99 and max, idle and under the
batches, and the batches' own throughput. Target: p99 under load below 50 ms on 2 cores.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from multiprocessing import Process, Queue
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, seed_catalog, serve

BATCHES = 4
ITEMS = 50
SECONDS = 8.0
PROBE_EVERY_S = 0.02


async def probe_health(client: httpx.AsyncClient, until: float) -> list[float]:
    latencies = []
    while time.perf_counter() < until:
        started = time.perf_counter()
        (await client.get("/health")).raise_for_status()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_EVERY_S)
    return latencies


async def hammer(base: str, until: float) -> list[int]:
    """Send maximal batches until `until`; the size of each answer."""
    body = {"load": [f"/grommets?limit=500&n={n}" for n in range(ITEMS)]}
    sizes = []
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=AUTH) as client:
        while time.perf_counter() < until:
            response = await client.post("/batch", json=body)
            response.raise_for_status()
            sizes.append(len(response.content))
    return sizes


def load_process(base: str, until: float, out: Queue[list[int]]) -> None:
    """The batches, in a process of their own: reading 4 MB answers must not slow the probe."""

    async def run() -> list[int]:
        done = await asyncio.gather(*(hammer(base, until) for _ in range(BATCHES)))
        return [size for sizes in done for size in sizes]

    out.put(asyncio.run(run()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def line(title: str, latencies: list[float]) -> str:
    ms = [v * 1000 for v in latencies]
    return (
        f"{title:<22} n={len(ms):>4}  p50={statistics.median(ms):7.2f} ms"
        f"  p99={percentile(ms, 0.99):8.2f} ms  max={max(ms):8.2f} ms"
    )


async def main(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=AUTH) as client:
        await seed_catalog(client, grommets=500, widgets=0)
        idle = await probe_health(client, time.perf_counter() + 3.0)
        until = time.perf_counter() + SECONDS
        results: Queue[list[int]] = Queue()
        load = Process(target=load_process, args=(base, until, results))
        load.start()
        await asyncio.sleep(0.5)
        loaded = await probe_health(client, until)
        sizes = await asyncio.to_thread(results.get)
        load.join()
    print(line("/health idle", idle))
    print(line(f"/health, {BATCHES} batches", loaded))
    ratio = percentile(loaded, 0.99) / percentile(idle, 0.99)
    print(
        f"batches answered: {len(sizes)} of {sizes[0] / 1e6:.1f} MB each;"
        f" p99 loaded/idle = {ratio:.1f}x;"
        f" target p99 < 50 ms: {'met' if percentile(loaded, 0.99) < 0.05 else 'NOT met'}"
    )


if __name__ == "__main__":
    with serve() as base:
        asyncio.run(main(base))
