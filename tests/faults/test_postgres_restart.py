"""PostgreSQL stopped and started again under load: 503s while it is down, never another 5xx,
never a half-written batch, and service again soon after it is back."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import make_container
from tests.faults import tally
from tests.faults.own_postgres import OwnPostgres, own_postgres
from tests.helpers import AUTH, create_app, grommet_body, served

CLIENTS = 8
DOWN_S = 2.0
RECOVERY_LIMIT_S = 15.0


@pytest.fixture
async def postgres() -> AsyncIterator[OwnPostgres]:
    async with own_postgres() as server:
        yield server


@pytest.fixture
async def http(postgres: OwnPostgres) -> AsyncIterator[httpx.AsyncClient]:
    app: Any = create_app(make_container(postgres.url, db_pool_timeout_s=1.0))
    async with served(app, headers=AUTH) as client:
        yield client


class Load:
    """Clients sending two-write atomic batches and single reads until told to stop."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.statuses: Counter[str] = Counter()
        self.serial = itertools.count()
        self.committed: set[int] = set()
        self.last_ok = 0.0
        self.stopping = False

    async def client(self) -> None:
        while not self.stopping:
            n = next(self.serial)
            await self.batch(n)
            single = await self.http.get("/grommets", params={"limit": "5"})
            self.note("single", single.status_code)

    async def batch(self, n: int) -> None:
        items = [
            {"method": "POST", "path": "/grommets", "body": grommet_body(f"b{n}-{part}", 3)}
            for part in ("a", "b")
        ]
        response = await self.http.post("/batch", json={"requests": items})
        if response.status_code != 200:
            self.note("batch", response.status_code)
            return
        answer = response.json()
        worst = max(item["status"] for item in answer["responses"])
        self.note("batch", 200 if answer["committed"] else worst)
        if answer["committed"]:
            self.committed.add(n)

    def note(self, kind: str, status: int) -> None:
        self.statuses[f"{kind}_{status}"] += 1
        if status < 400:
            self.last_ok = time.perf_counter()


async def rows_per_batch(url: str) -> Counter[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM grommets"))).scalars().all()
    finally:
        await engine.dispose()
    return Counter(name.rsplit("-", 1)[0] for name in names)


async def test_postgres_stopped_and_restarted_under_load(
    postgres: OwnPostgres, http: httpx.AsyncClient
) -> None:
    load = Load(http)
    clients = [asyncio.create_task(load.client()) for _ in range(CLIENTS)]
    try:
        await asyncio.sleep(1.0)
        await postgres.stop()
        await asyncio.sleep(DOWN_S)
        await postgres.start()
        back = time.perf_counter()
        async with asyncio.timeout(RECOVERY_LIMIT_S):
            while load.last_ok < back:
                await asyncio.sleep(0.05)
        recovery_s = load.last_ok - back
        await asyncio.sleep(0.5)
    finally:
        load.stopping = True
        await asyncio.gather(*clients, return_exceptions=True)
    for task in clients:
        task.result()  # no client failed on a transport error

    rows = await rows_per_batch(postgres.url)
    half_written = sum(1 for count in rows.values() if count != 2)
    lost = sum(1 for n in load.committed if rows.get(f"b{n}") != 2)
    unavailable = sum(v for k, v in load.statuses.items() if k.endswith("_503"))
    other_5xx = (
        sum(v for k, v in load.statuses.items() if k.rsplit("_", 1)[1].startswith("5"))
        - unavailable
    )
    tally.record(
        pg_restart_calls=sum(load.statuses.values()),
        pg_restart_503=unavailable,
        pg_restart_other_5xx=other_5xx,
        pg_restart_half_written=half_written,
        pg_restart_committed_lost=lost,
        pg_restart_recovery_ms=round(recovery_s * 1000),
    )
    assert other_5xx == 0, load.statuses
    assert half_written == 0 and lost == 0, rows
    assert unavailable > 0, f"the stop was not noticed: {load.statuses}"
    assert load.committed, "some batches committed"
