"""Coalesced lookups on and off, side by side, against real uvicorn servers.

Run: `make bench` (or `.venv/bin/python bench/coalescing.py`). Two servers start on the same
machine, one with COALESCE_LOOKUPS=true and one with false, and take turns on each workload.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, median_seconds, seed_catalog, serve, server_queries

REPEAT = 25
Workload = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def batch_of(n: int) -> Workload:
    paths = [f"/widgets/{i}?include=grommets" for i in range(1, n + 1)]

    async def run(client: httpx.AsyncClient) -> httpx.Response:
        response = await client.post("/batch", json={"load": paths})
        response.raise_for_status()
        return response

    return run


async def list_of_100(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.get("/widgets?limit=100&include=grommets")
    response.raise_for_status()
    return response


async def singles_20(client: httpx.AsyncClient) -> httpx.Response:
    response = None
    for i in range(1, 21):
        response = await client.get(f"/widgets/{i}?include=grommets")
        response.raise_for_status()
    assert response is not None
    return response


async def measure(on: str, off: str) -> None:
    async with (
        httpx.AsyncClient(base_url=on, timeout=60, headers=AUTH) as client_on,
        httpx.AsyncClient(base_url=off, timeout=60, headers=AUTH) as client_off,
    ):
        for client in (client_on, client_off):
            await seed_catalog(client, grommets=150, widgets=120)
        workloads: list[tuple[str, Workload]] = [
            ("batch of 20 GET /widgets/{id}?include=grommets", batch_of(20)),
            ("batch of 50 GET /widgets/{id}?include=grommets", batch_of(50)),
            ("GET /widgets?limit=100&include=grommets", list_of_100),
        ]
        print(f"{'workload':<50} {'queries on/off':>15} {'ms on':>8} {'ms off':>8} {'off/on':>7}")
        for name, workload in workloads:
            q_on = server_queries(await workload(client_on))
            q_off = server_queries(await workload(client_off))
            t_on = await median_seconds(functools.partial(workload, client_on), repeat=REPEAT)
            t_off = await median_seconds(functools.partial(workload, client_off), repeat=REPEAT)
            print(
                f"{name:<50} {f'{q_on}/{q_off}':>15} {t_on * 1000:>8.2f}"
                f" {t_off * 1000:>8.2f} {t_off / t_on:>6.1f}x"
            )
        t_batch = await median_seconds(lambda: batch_of(20)(client_on), repeat=REPEAT)
        t_singles = await median_seconds(lambda: singles_20(client_on), repeat=REPEAT)
        print(
            f"\n20 single GETs {t_singles * 1000:.2f} ms vs one coalesced batch of 20"
            f" {t_batch * 1000:.2f} ms: {t_singles / t_batch:.1f}x"
        )


def main() -> None:
    with serve(COALESCE_LOOKUPS="true") as on, serve(COALESCE_LOOKUPS="false") as off:
        asyncio.run(measure(on, off))


if __name__ == "__main__":
    main()
