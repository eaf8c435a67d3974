"""Live answers: 1,000 subscriptions over 100 sockets against re-polling the same GETs.

Run: `make bench` (or `.venv/bin/python bench/live.py`). One uvicorn worker on 127.0.0.1 with
an embedded database: 100 grommets, 1,000 widgets of three parts each; every widget subscribed
once (`/widgets/{id}?include=grommets`), ten per socket. Reported, measured in this one run:
- the time from sending one write until every affected subscriber has its update (one grommet:
  the 30 widgets that embed it; one batch changing all 100 grommets: all 1,000), median of 5;
- pushes per second under a steady stream of writes, with the queries and bytes they cost;
- the same per minute for clients re-polling all 1,000 GETs every second, and the ratio.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, seed_catalog, serve, server_queries

GROMMETS = 100
WIDGETS = 1_000
SOCKETS = 100
POLLERS = 16  # concurrent GETs of the pollers (more only queue at the database pool)
REPEAT = 5
STREAM_S = float(os.environ.get("LIVE_STREAM_S", "10"))
STREAM_RATES = (1, 20)  # writes per second in the streams
Arrival = tuple[float, str, int]  # when, subscription id, frame bytes


def widgets_using(grommet: int) -> set[str]:
    """Subscription ids (widget ids) whose widget embeds `grommet` (seed_catalog's parts)."""
    return {
        str(n + 1)
        for n in range(WIDGETS)
        if any((n + k) % GROMMETS == grommet - 1 for k in range(3))
    }


async def read_frames(ws: ClientConnection, arrivals: asyncio.Queue[Arrival]) -> None:
    async for raw in ws:
        frame = orjson.loads(raw)
        arrivals.put_nowait((time.perf_counter(), frame["id"], len(raw)))


async def arrived(arrivals: asyncio.Queue[Arrival], expected: set[str]) -> float:
    """Waits until every id in `expected` has an update; the time of the last one."""
    missing, last = set(expected), 0.0
    while missing:
        when, sub_id, _ = await asyncio.wait_for(arrivals.get(), 30)
        missing.discard(sub_id)
        last = when
    return last


def drain(arrivals: asyncio.Queue[Arrival]) -> list[Arrival]:
    out = []
    while not arrivals.empty():
        out.append(arrivals.get_nowait())
    return out


async def one_write(
    http: httpx.AsyncClient, arrivals: asyncio.Queue[Arrival], n: int
) -> dict[str, float]:
    """Time until the 30 subscribers of one grommet, then all 1,000, have their update."""
    one, every = [], []
    for round_ in range(REPEAT):
        grommet = 1 + (7 * round_) % GROMMETS
        started = time.perf_counter()
        await http.patch(f"/grommets/{grommet}", json={"diameter_mm": 30 + n + round_})
        one.append(await arrived(arrivals, widgets_using(grommet)) - started)
        await asyncio.sleep(0.3)
        extra = drain(arrivals)
        assert not extra, f"{len(extra)} pushes to subscriptions the write did not touch"
        batch = {
            "requests": [
                {"method": "PATCH", "path": f"/grommets/{g}", "body": {"material": f"m{round_}"}}
                for g in range(1, GROMMETS + 1)
            ]
        }
        started = time.perf_counter()
        (await http.post("/batch", json=batch)).raise_for_status()
        every.append(await arrived(arrivals, {str(w) for w in range(1, WIDGETS + 1)}) - started)
        await asyncio.sleep(0.3)
        extra = drain(arrivals)
        assert not extra, f"{len(extra)} pushes beyond one per subscription"
    return {"one": statistics.median(one), "every": statistics.median(every)}


async def stream(
    http: httpx.AsyncClient, arrivals: asyncio.Queue[Arrival], rate: int
) -> dict[str, float]:
    """`rate` writes a second for STREAM_S seconds: pushes, bytes, queries per second."""
    before = (await http.get("/_bench/live")).json()
    drain(arrivals)
    writes, started = 0, time.perf_counter()
    while time.perf_counter() - started < STREAM_S:
        grommet = random.randint(1, GROMMETS)
        await http.patch(f"/grommets/{grommet}", json={"diameter_mm": random.randint(1, 500)})
        writes += 1
        await asyncio.sleep(max(0.0, started + writes / rate - time.perf_counter()))
    await asyncio.sleep(1.0)  # the last pushes land
    elapsed = time.perf_counter() - started
    after = (await http.get("/_bench/live")).json()
    got = drain(arrivals)
    return {
        "writes/s": writes / elapsed,
        "pushes/s": len(got) / elapsed,
        "bytes/s": sum(size for _, _, size in got) / elapsed,
        "queries/s": (after["queries"] - before["queries"]) / elapsed,
        "rounds/s": (after["rounds"] - before["rounds"]) / elapsed,
    }


async def polling_pass(http: httpx.AsyncClient, paths: list[str]) -> dict[str, float]:
    """All 1,000 GETs once, 16 at a time: seconds, body bytes, queries (Server-Timing)."""
    todo = iter(paths)
    totals = {"bytes": 0, "queries": 0}

    async def worker() -> None:
        for path in todo:
            try:
                response = await http.get(path)
            except httpx.TransportError:  # a keep-alive connection closed under us: once more
                response = await http.get(path)
            totals["bytes"] += len(response.content)
            totals["queries"] += server_queries(response)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(POLLERS)))
    return {**totals, "seconds": time.perf_counter() - started}


async def run(base: str) -> None:
    limits = httpx.Limits(max_connections=SOCKETS, max_keepalive_connections=SOCKETS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60, headers=AUTH) as http:
        await seed_catalog(http, grommets=GROMMETS, widgets=WIDGETS)
        paths = [f"/widgets/{w}?include=grommets" for w in range(1, WIDGETS + 1)]
        arrivals: asyncio.Queue[Arrival] = asyncio.Queue()
        sockets = [
            await connect(base.replace("http", "ws", 1) + "/ws", additional_headers=AUTH)
            for _ in range(SOCKETS)
        ]
        readers = [asyncio.create_task(read_frames(ws, arrivals)) for ws in sockets]
        started = time.perf_counter()
        for w, path in enumerate(paths, start=1):
            frame = {"type": "subscribe", "id": str(w), "path": path}
            await sockets[w % SOCKETS].send(orjson.dumps(frame).decode())
        await arrived(arrivals, {str(w) for w in range(1, WIDGETS + 1)})
        subscribe_s = time.perf_counter() - started
        drain(arrivals)

        latency = await one_write(http, arrivals, 0)
        streams = [await stream(http, arrivals, rate) for rate in STREAM_RATES]
        await polling_pass(http, paths)  # warm-up
        poll = await polling_pass(http, paths)
        for ws in sockets:
            await ws.close()
        for reader in readers:
            reader.cancel()
    report(subscribe_s, latency, streams, poll)


def report(
    subscribe_s: float,
    latency: dict[str, float],
    streams: list[dict[str, float]],
    poll: dict[str, float],
) -> None:
    print(f"{WIDGETS} subscriptions over {SOCKETS} sockets; one uvicorn worker")
    print(f"  subscribe all (1000 first answers)         {subscribe_s * 1000:8.0f} ms")
    print(f"  one write -> its 30 subscribers updated    {latency['one'] * 1000:8.1f} ms (median)")
    print(
        f"  one batch -> all 1000 subscribers updated  {latency['every'] * 1000:8.1f} ms (median)"
    )
    print(f"  one pass of the 1000 GETs by polling       {poll['seconds'] * 1000:8.0f} ms")
    print()
    print("| per minute | writes/s | pushes/s | queries | bytes to clients |")
    print("|---|---:|---:|---:|---:|")
    poll_q, poll_b = poll["queries"] * 60, poll["bytes"] * 60
    for live in streams:
        print(
            f"| live, writes touching 30 subscriptions each | {live['writes/s']:.1f}"
            f" | {live['pushes/s']:.0f} | {live['queries/s'] * 60:.0f}"
            f" | {live['bytes/s'] * 60:.0f} |"
        )
    print(f"| re-polling the 1000 GETs every second | any | | {poll_q:.0f} | {poll_b:.0f} |")
    for live in streams:
        print(
            f"| polling / live at {live['writes/s']:.0f} writes/s | | |"
            f" {poll_q / max(live['queries/s'] * 60, 1):.0f}x"
            f" | {poll_b / max(live['bytes/s'] * 60, 1):.1f}x |"
        )


def main() -> None:
    with serve(
        app="bench._live_asgi:app",
        BATCH_MAX_ITEMS=str(GROMMETS),
        WS_MAX_CONNECTIONS_PER_CALLER=str(SOCKETS),  # every socket is the one bench caller's
    ) as base:
        asyncio.run(run(base))


if __name__ == "__main__":
    main()
