"""Two uvicorn workers: one killed with SIGKILL mid-batch, SIGTERM during batches, and
`/metrics` adding up what every worker counted."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.live_server import LiveServer, live_server
from tests.faults import tally
from tests.helpers import AUTH
from tests.websocket_support import lingering_work

APP = "tests.e2e.probe_asgi:app"
BATCHES = 8


@pytest.fixture
async def two_workers(database_url: str) -> AsyncIterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="carpool-metrics-") as metrics_dir:
        env = {"DATABASE_URL": database_url, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
        async with live_server(APP, env, args=["--workers", "2"]) as live:
            yield live


def slow_batch(n: int, seconds: float) -> dict[str, Any]:
    writes = [
        {"method": "POST", "path": "/grommets", "body": {"name": f"b{n}-{part}",
                                                         "material": "brass", "diameter_mm": 3}}
        for part in ("a", "b")
    ]  # fmt: skip
    return {"requests": [*writes, {"path": f"/_probe/sleep?s={seconds}"}]}


async def send(base: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=base, timeout=30, headers=AUTH
    ) as http:  # a connection of its own
        return await http.post("/batch", json=body)


async def sleepers(admin_engine: AsyncEngine, at_least: int) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state = 'active' AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(20):
        while True:
            async with admin_engine.connect() as conn:
                if (await conn.execute(query)).scalar_one() >= at_least:
                    return
            await asyncio.sleep(0.05)


async def rows_per_batch(admin_engine: AsyncEngine) -> Counter[str]:
    async with admin_engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM grommets"))).scalars().all()
    return Counter(name.rsplit("-", 1)[0] for name in names)


def busiest_worker(live: LiveServer) -> psutil.Process:
    """The worker holding the most client connections right now."""
    children = psutil.Process(live.process.pid).children()
    workers = [child for child in children if "resource_tracker" not in " ".join(child.cmdline())]

    def clients(worker: psutil.Process) -> int:
        return sum(
            1
            for conn in worker.net_connections(kind="tcp")
            if conn.laddr and conn.laddr.port == live.port and conn.status == "ESTABLISHED"
        )

    return max(workers, key=clients)


async def test_a_worker_killed_mid_batch_leaves_nothing_half_written(
    two_workers: LiveServer, admin_engine: AsyncEngine
) -> None:
    base = two_workers.http_url
    tasks = [asyncio.create_task(send(base, slow_batch(n, 3))) for n in range(BATCHES)]
    await sleepers(admin_engine, BATCHES // 2)
    os.kill(busiest_worker(two_workers).pid, signal.SIGKILL)
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    committed = {
        n
        for n, answer in enumerate(answers)
        if isinstance(answer, httpx.Response) and answer.json().get("committed")
    }
    assert await lingering_work(admin_engine, within=10) == []
    rows = await rows_per_batch(admin_engine)
    half_written = sum(1 for count in rows.values() if count != 2)
    cut_off = sum(1 for answer in answers if isinstance(answer, Exception))
    tally.record(
        kill9_batches=BATCHES,
        kill9_cut_off=cut_off,
        kill9_committed=len(committed),
        kill9_half_written=half_written,
    )
    assert half_written == 0, rows
    assert all(rows.get(f"b{n}") == 2 for n in committed), "what was answered committed is kept"
    assert cut_off > 0, "the killed worker held some batches"
    async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
        assert (await http.get("/health")).status_code == 200, "the other worker serves on"


async def test_metrics_add_up_every_worker(two_workers: LiveServer) -> None:
    calls = 20
    for _ in range(calls):  # each on a connection of its own: spread over both workers
        async with httpx.AsyncClient(base_url=two_workers.http_url, headers=AUTH) as http:
            assert (await http.get("/grommets/999999")).status_code == 404
    async with httpx.AsyncClient(base_url=two_workers.http_url, headers=AUTH) as http:
        text_format = (await http.get("/metrics")).text
    counted = sum(
        sample.value
        for family in text_string_to_metric_families(text_format)
        for sample in family.samples
        if sample.name == "carpool_calls_total"
        and sample.labels.get("route") == "/grommets/{grommet_id}"
        and sample.labels.get("status") == "404"
    )
    assert counted == calls


async def test_sigterm_lets_short_batches_finish_and_rolls_back_long_ones(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    grace_s = 2
    env = {"DATABASE_URL": database_url}
    args = ["--timeout-graceful-shutdown", str(grace_s)]
    async with live_server(APP, env, args=args) as live:
        short = [asyncio.create_task(send(live.http_url, slow_batch(n, 0.8))) for n in range(3)]
        long = [asyncio.create_task(send(live.http_url, slow_batch(n, 8))) for n in range(3, 6)]
        await sleepers(admin_engine, 6)
        started = asyncio.get_running_loop().time()
        live.process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*short, *long, return_exceptions=True)
        stopped_in = asyncio.get_running_loop().time() - started
        await live.stop()
    assert await lingering_work(admin_engine, within=10) == []
    rows = await rows_per_batch(admin_engine)
    finished = [
        isinstance(a, httpx.Response) and a.status_code == 200 and a.json()["committed"]
        for a in answers
    ]
    half_written = sum(1 for count in rows.values() if count != 2)
    tally.record(
        sigterm_batches=len(answers),
        sigterm_finished=sum(finished),
        sigterm_rolled_back=sum(1 for n in range(3, 6) if f"b{n}" not in rows),
        sigterm_half_written=half_written,
    )
    assert finished[:3] == [True] * 3, answers[:3]
    assert all(rows.get(f"b{n}") == 2 for n in range(3)), rows
    assert all(f"b{n}" not in rows for n in range(3, 6)), "past the grace: rolled back"
    for cut in answers[3:]:  # carpool's own answer, not uvicorn's plain-text 500
        assert isinstance(cut, httpx.Response), cut
        assert cut.status_code == 503, cut.text
        assert cut.headers["content-type"] == "application/problem+json"
        assert cut.json()["type"] == "urn:carpool:problem:shutting-down"
        assert cut.headers["retry-after"] == "1"
    assert half_written == 0
    assert stopped_in < grace_s + 5
