"""1,000 GETs over one WebSocket (16 in flight) against 1,000 GETs over 16 keep-alive connections.

Run: `make bench` (or `.venv/bin/python bench/websocket.py`). One uvicorn worker on 127.0.0.1
with a seeded embedded database; both clients run in this process, take turns for a few
rounds, and the median round of each is reported with the ratio of their request rates.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, seed_catalog, serve

REQUESTS = 1_000
IN_FLIGHT = 16
ROUNDS = 5
ROWS = 60
TARGET = 1.5


def paths(n: int) -> list[str]:
    """`n` GETs of single grommets and widgets, cycling through the seeded rows."""
    kinds = itertools.cycle(("/grommets/{}", "/widgets/{}"))
    return [next(kinds).format(1 + i % ROWS) for i in range(n)]


async def over_websocket(ws: ClientConnection, todo: list[str]) -> None:
    """Every path as a request frame, never more than IN_FLIGHT unanswered."""
    frames = iter(enumerate(todo))
    sent = 0
    for frame_id, path in itertools.islice(frames, IN_FLIGHT):
        await ws.send(orjson.dumps({"id": str(frame_id), "path": path}).decode())
        sent += 1
    for _ in range(len(todo)):
        answer = orjson.loads(await ws.recv())
        if answer["status"] != 200:
            raise RuntimeError(f"frame {answer['id']} answered {answer['status']}")
        following = next(frames, None)
        if following is not None:
            await ws.send(orjson.dumps({"id": str(following[0]), "path": following[1]}).decode())
            sent += 1
    assert sent == len(todo)


async def over_http(client: httpx.AsyncClient, todo: list[str]) -> None:
    """Every path as a GET, IN_FLIGHT workers sharing IN_FLIGHT keep-alive connections."""
    queue = iter(todo)

    async def worker() -> None:
        for path in queue:
            (await client.get(path)).raise_for_status()

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


def server_pid(base: str) -> int | None:
    """The pid of the uvicorn serving `base` (Linux /proc), to read its CPU time; else None."""
    port = base.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"uvicorn" in b" ".join(argv) and port in argv:
                return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far (0 if unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Sample = tuple[float, float, float]  # wall, client CPU and server CPU seconds


async def timed(action: Awaitable[None], pid: int | None) -> Sample:
    wall, cpu, server = time.perf_counter(), time.process_time(), cpu_seconds(pid)
    await action
    return time.perf_counter() - wall, time.process_time() - cpu, cpu_seconds(pid) - server


async def measure(base: str) -> dict[str, list[Sample]]:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    results: dict[str, list[Sample]] = {"websocket": [], "http": []}
    pid = server_pid(base)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, headers=AUTH) as client:
        await seed_catalog(client, grommets=ROWS, widgets=ROWS)
        ws_url = base.replace("http://", "ws://") + "/ws"
        # Small JSON frames gain nothing from permessage-deflate; it costs CPU on both ends.
        async with connect(ws_url, compression=None, additional_headers=AUTH) as ws:
            todo = paths(REQUESTS)
            await over_websocket(ws, todo[:200])  # warm-up: connections, caches
            await over_http(client, todo[:200])
            for _ in range(ROUNDS):
                results["websocket"].append(await timed(over_websocket(ws, todo), pid))
                results["http"].append(await timed(over_http(client, todo), pid))
    return results


def report(results: dict[str, list[Sample]]) -> None:
    rates = {}
    print(f"{REQUESTS} GETs, {IN_FLIGHT} in flight, median of {ROUNDS} rounds, one uvicorn worker")
    print(f"{'transport':<34} {'req/s':>7} {'ms':>7} {'server CPU µs/req':>18} {'client':>7}")
    labels = {"websocket": "WebSocket, 1 socket", "http": f"HTTP keep-alive, {IN_FLIGHT} conns"}
    for name, rounds in results.items():
        wall, client, server = (statistics.median(sample[i] for sample in rounds) for i in range(3))
        rates[name] = REQUESTS / wall
        print(
            f"{labels[name]:<34} {rates[name]:>7.0f} {wall * 1000:>7.0f}"
            f" {server / REQUESTS * 1e6:>18.0f} {client / REQUESTS * 1e6:>7.0f}"
        )
    ratio = rates["websocket"] / rates["http"]
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"ratio WebSocket/HTTP: {ratio:.2f}x ({verdict} the {TARGET}x target)")


def main() -> None:
    with serve() as base:
        results = asyncio.run(measure(base))
    report(results)


if __name__ == "__main__":
    main()
