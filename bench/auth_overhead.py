"""What identity and rate limits cost per call: one server, side by side, interleaved rounds.

Run: `.venv/bin/python bench/auth_overhead.py` (also part of `make bench`). The server grants
`catalog:read` to anonymous callers, so the same route is measured without a token (no
verification), with a token (verified once, then cached), and on a second server with a
memory rate limit high enough never to refuse. Prints requests/s and the ratios.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import _SECRET, AUTH, seed_catalog, serve
from carpool.auth.identity import KNOWN_SCOPES
from carpool.auth.rate_limits import RateLimits
from carpool.auth.tokens import Identifier, SecretKey, issue_token

CONCURRENCY = 32
CALLS = 1500
ROUNDS = 3


async def throughput(base: str, headers: dict[str, str]) -> float:
    """Requests per second of CALLS `GET /grommets/1`, CONCURRENCY at a time (a fresh client:
    uvicorn closes keep-alive connections left idle while the other server is measured)."""
    todo = iter(range(CALLS))
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def worker() -> None:
            for _ in todo:
                try:
                    response = await client.get("/grommets/1")
                except httpx.TransportError:  # a connection reset on this shared machine
                    response = await client.get("/grommets/1")
                response.raise_for_status()

        await client.get("/health")
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return CALLS / (time.perf_counter() - started)


async def cpu_per_call() -> None:
    """CPU microseconds of each step `call_endpoint` adds, measured in this process."""
    identifier = Identifier(SecretKey(_SECRET))
    tokens = [
        issue_token(_SECRET, sub=f"u{n}", scopes=KNOWN_SCOPES, ttl_s=3600) for n in range(2000)
    ]
    limits = RateLimits("100000000/minute")

    async def per_call(step: object, n: int) -> float:
        started = time.process_time()
        for i in range(n):
            await step(i)  # type: ignore[operator]
        return (time.process_time() - started) / n * 1e6

    first = await per_call(lambda i: identifier.identify(f"Bearer {tokens[i]}"), len(tokens))
    cached = await per_call(lambda i: identifier.identify(f"Bearer {tokens[i % 50]}"), 20000)
    charge = await per_call(lambda i: limits.charge(f"sub:u{i % 50}"), 20000)
    print(f"verify a new token (HS256): {first:6.1f} us; a known one: {cached:5.1f} us")
    print(f"one charge of an in-memory rate limit: {charge:5.1f} us")


async def main() -> None:
    await cpu_per_call()
    with (
        serve(AUTH_ANONYMOUS_SCOPES="catalog:read") as plain,
        serve(AUTH_ANONYMOUS_SCOPES="catalog:read", RATE_LIMIT="100000000/minute") as limited,
    ):
        for base in (plain, limited):
            async with httpx.AsyncClient(base_url=base, headers=AUTH) as client:
                await seed_catalog(client, grommets=5, widgets=0)
        runs = {
            "no token": (plain, {}),
            "token": (plain, AUTH),
            "token + rate limit": (limited, AUTH),
        }
        best = dict.fromkeys(runs, 0.0)
        for _ in range(ROUNDS):  # interleaved, best of each: the machine is shared
            for name, (base, headers) in runs.items():
                best[name] = max(best[name], await throughput(base, headers))
    print(f"GET /grommets/1, {CALLS} calls, {CONCURRENCY} at a time, best of {ROUNDS}")
    for name, rate in best.items():
        print(f"{name:>20}: {rate:8.0f} req/s  ({rate / best['no token']:.2f}x of no token)")


if __name__ == "__main__":
    asyncio.run(main())
