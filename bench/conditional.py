"""Bytes and time a batch of 50 reads saves with 304 items (If-None-Match) and compression.

Run: `make bench` (or `.venv/bin/python bench/conditional.py`). One uvicorn, one seeded
database; the variants alternate run by run (side by side), and each is reported as a ratio
against the unconditional, uncompressed batch: bytes on the wire, and median wall time
(the client reads and decodes the whole answer, as a real one would).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, seed_catalog, serve

N = 50
REPEAT = 40


def envelope(etags: list[str] | None) -> dict[str, Any]:
    items = []
    for i in range(1, N + 1):
        item: dict[str, Any] = {"id": str(i), "path": f"/widgets/{i}?include=grommets"}
        if etags is not None:
            item["headers"] = {"If-None-Match": etags[i - 1]}
        items.append(item)
    return {"requests": items}


async def wire_bytes(client: httpx.AsyncClient, body: Any, encoding: str) -> int:
    headers = {"Accept-Encoding": encoding}
    async with client.stream("POST", "/batch", json=body, headers=headers) as answer:
        return sum([len(part) async for part in answer.aiter_raw()])


async def measure(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=AUTH) as client:
        await seed_catalog(client, grommets=60, widgets=60)
        first = (await client.post("/batch", json=envelope(None))).json()["responses"]
        etags = [item["headers"]["etag"] for item in first]
        variants = {
            "unconditional, identity": (envelope(None), "identity"),
            "unconditional, gzip": (envelope(None), "gzip"),
            "unconditional, br": (envelope(None), "br"),
            "all 304 (If-None-Match), identity": (envelope(etags), "identity"),
            "all 304 (If-None-Match), gzip": (envelope(etags), "gzip"),
        }
        sizes = {name: await wire_bytes(client, *variant) for name, variant in variants.items()}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(REPEAT + 1):
            for name, (body, encoding) in variants.items():
                started = time.perf_counter()
                answer = await client.post(
                    "/batch", json=body, headers={"Accept-Encoding": encoding}
                )
                answer.raise_for_status()
                times[name].append(time.perf_counter() - started)
    base_name = "unconditional, identity"
    medians = {name: statistics.median(ts[1:]) for name, ts in times.items()}
    print(f"\nPOST /batch of {N} x GET /widgets/{{id}}?include=grommets (median of {REPEAT})")
    print(f"{'variant':<36} {'bytes':>8} {'bytes ratio':>12} {'ms':>8} {'time ratio':>11}")
    for name in variants:
        print(
            f"{name:<36} {sizes[name]:>8} {sizes[name] / sizes[base_name]:>11.3f}x"
            f" {medians[name] * 1000:>8.2f} {medians[name] / medians[base_name]:>10.2f}x"
        )


def main() -> None:
    with serve() as base:
        asyncio.run(measure(base))


if __name__ == "__main__":
    main()
