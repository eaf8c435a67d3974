"""20 concurrent `client.get` calls (batched into one POST /batch; or frames over one socket)
against 20 plain httpx GETs, side by side: wall time per 20 and server CPU per call.

Run: `make bench` (or `.venv/bin/python bench/clients.py`). One uvicorn worker on 127.0.0.1
with a seeded embedded database; the three clients take turns, round after round, and the
server's CPU (from /proc) is read around each one's turns.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, seed_catalog, serve
from carpool_client import Client
from throughput import cpu_seconds, server_pid

CALLS = 20
ROUNDS = 60
ROWS = 60
TOKEN = AUTH["authorization"].removeprefix("Bearer ")


def paths(round_number: int) -> list[str]:
    return [f"/grommets/{1 + (round_number * CALLS + i) % ROWS}" for i in range(CALLS)]


async def measure(base: str) -> dict[str, tuple[float, float, float]]:
    """Per client: (median ms per 20 calls, server µs CPU per call, client µs CPU per call)."""
    pid = server_pid(base)
    async with (
        httpx.AsyncClient(base_url=base, headers=AUTH) as plain,
        Client(base, token=TOKEN) as batched,
        Client(base, token=TOKEN, transport="ws") as socket,
    ):

        async def plain_gets(todo: list[str]) -> None:
            for answer in await asyncio.gather(*(plain.get(path) for path in todo)):
                answer.raise_for_status()

        async def client_gets(client: Client, todo: list[str]) -> None:
            await asyncio.gather(*(client.get(path) for path in todo))

        runs: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "httpx, 20 GETs": plain_gets,
            "client, http (1 batch)": lambda todo: client_gets(batched, todo),
            "client, ws (20 frames)": lambda todo: client_gets(socket, todo),
        }
        walls: dict[str, list[float]] = {name: [] for name in runs}
        server: dict[str, float] = dict.fromkeys(runs, 0.0)
        mine: dict[str, float] = dict.fromkeys(runs, 0.0)
        for run in runs.values():  # warm-up: connections, the batch limits, the socket
            await run(paths(0))
        for round_number in range(ROUNDS):
            order = list(runs.items())
            if round_number % 2:
                order.reverse()
            for name, run in order:
                todo = paths(round_number)
                cpu, own, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
                await run(todo)
                walls[name].append(time.perf_counter() - started)
                server[name] += cpu_seconds(pid) - cpu
                mine[name] += time.process_time() - own
        per_call = 1e6 / (ROUNDS * CALLS)
        return {
            name: (
                statistics.median(walls[name]) * 1e3,
                server[name] * per_call,
                mine[name] * per_call,
            )
            for name in runs
        }


async def main() -> None:
    with serve() as base:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as http:
            await seed_catalog(http, grommets=ROWS, widgets=0)
        results = await measure(base)
    baseline = results["httpx, 20 GETs"]
    print(f"{CALLS} concurrent GETs of one grommet each, {ROUNDS} rounds, one uvicorn worker")
    print(f"  {'':24} {'ms/20 (median)':>15} {'server µs/call':>15} {'client µs/call':>15}")
    for name, (wall, server, client) in results.items():
        ratios = (wall / baseline[0], server / baseline[1], client / baseline[2])
        print(
            f"  {name:24} {wall:9.1f} {ratios[0]:4.2f}x"
            f" {server:9.0f} {ratios[1]:4.2f}x {client:9.0f} {ratios[2]:4.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
