"""Two uvicorn workers (processes) with RATE_LIMIT_STORAGE_URL on one Redis share one budget."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx

from tests.e2e.live_server import live_server
from tests.helpers import bearer
from tests.redis_server import redis_server

BUDGET = 6


async def statuses(database_url: str, storage: str) -> list[int]:
    """Alternating between two workers, the status of BUDGET + 2 calls by one caller."""
    env = {"DATABASE_URL": database_url, "RATE_LIMIT": f"{BUDGET}/minute"}
    env["RATE_LIMIT_STORAGE_URL"] = storage
    async with AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(live_server("asgi:app", env)) for _ in "ab"]
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=worker.http_url, headers=bearer(sub="shared"))
            )
            for worker in workers
        ]
        answers = [await clients[n % 2].get("/grommets") for n in range(BUDGET + 2)]
    return [answer.status_code for answer in answers]


async def test_two_workers_share_one_redis_budget(database_url: str) -> None:
    with redis_server() as url:
        assert await statuses(database_url, url) == [200] * BUDGET + [429, 429]


async def test_in_memory_each_worker_keeps_its_own(database_url: str) -> None:
    assert await statuses(database_url, "memory://") == [200] * (BUDGET + 2)
