"""The local topology end to end (cluster/topology.py): nginx in front of two carpool
instances sharing PgBouncer, a PostgreSQL primary and its replica, and Redis.

Budgets are shared across instances, a write on one instance is pushed to a subscriber on
the other, and one instance restarted under load loses no write while sockets reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from cluster.topology import Cluster, cluster
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from carpool.data.engine import asyncpg_dsn
from tests.helpers import AUTH, TEST_SECRET, bearer, grommet_body
from tests.topology.skips import unless_missing

BUDGET = 40
_writers = itertools.count()


@pytest.fixture(scope="module")
def running() -> Iterator[Cluster]:
    with unless_missing(), cluster(secret=TEST_SECRET, rate_limit=f"{BUDGET}/minute") as up:
        yield up
        for instance in up.instances:
            said = instance.log.read_text()
            assert "Traceback" not in said, said[-3000:]


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/ws"


async def update(ws: ClientConnection, *, timeout: float = 15.0) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message.get("type") == "update":
            return message


async def test_one_budget_across_both_instances(running: Cluster) -> None:
    a, b = running.instances
    caller = bearer(sub="one-budget")
    async with (
        httpx.AsyncClient(base_url=a.url, headers=caller) as on_a,
        httpx.AsyncClient(base_url=b.url, headers=caller) as on_b,
    ):
        statuses = [
            (await (on_a if n % 2 else on_b).get("/grommets")).status_code
            for n in range(BUDGET + 2)
        ]
    assert statuses == [200] * BUDGET + [429, 429]


async def test_a_write_on_one_instance_is_pushed_to_a_subscriber_on_the_other(
    running: Cluster,
) -> None:
    a, b = running.instances
    async with httpx.AsyncClient(base_url=b.url, headers=bearer(sub="pusher")) as on_b:
        made = (await on_b.post("/grommets", json=grommet_body("across"))).json()
        async with connect(ws_url(a.url), additional_headers=bearer(sub="watcher")) as ws:
            await ws.send(
                orjson.dumps(
                    {"type": "subscribe", "id": "s", "path": f"/grommets/{made['id']}"}
                ).decode()
            )
            assert (await update(ws))["status"] == 200
            await on_b.patch(f"/grommets/{made['id']}", json={"material": "steel"})
            pushed = await update(ws)
    assert pushed["status"] == 200 and pushed["body"]["material"] == "steel"


async def _write_until(
    stop: asyncio.Event, proxy: str, answers: list[tuple[str, int]], retried: list[int]
) -> None:
    """POST grommets through the proxy until `stop`, each as a caller of its own, as a
    careful client does: with an Idempotency-Key, retried with it after a 502 or 503 (or a
    connection error) until answered; `answers` gets the last status of each."""
    async with httpx.AsyncClient(base_url=proxy, timeout=30) as http:
        while not stop.is_set():
            name = f"load-{next(_writers)}"
            headers = {**bearer(sub=name), "idempotency-key": name}
            for _attempt in range(20):
                try:
                    answer = await http.post("/grommets", json=grommet_body(name), headers=headers)
                    status = answer.status_code
                except httpx.TransportError:
                    status = 0
                if status not in (0, 502, 503):
                    break
                retried.append(status)
                await asyncio.sleep(0.1)
            answers.append((name, status))


async def _follow(
    first: str, proxy: str, path: str, seen: list[dict[str, Any]], stop: asyncio.Event
) -> int:
    """Keep a subscription of `path`, first on `first`, then through the proxy, reconnecting
    (with the etag it has) whenever the socket is closed; how many times it reconnected."""
    reconnections = -1
    etag = None
    while not stop.is_set():
        reconnections += 1
        try:
            url = first if reconnections == 0 else proxy
            async with connect(ws_url(url), additional_headers=AUTH) as ws:
                frame: dict[str, Any] = {"type": "subscribe", "id": "s", "path": path}
                if etag:
                    frame["if_none_match"] = etag
                await ws.send(orjson.dumps(frame).decode())
                while not stop.is_set():
                    try:
                        got = await update(ws, timeout=0.5)
                    except TimeoutError:
                        continue
                    seen.append(got)
                    etag = got["headers"].get("etag", etag)
        except (ConnectionClosed, OSError):
            await asyncio.sleep(0.1)
    return reconnections


async def test_one_instance_restarted_under_load_loses_no_write_and_sockets_reconnect(
    running: Cluster,
) -> None:
    a, _ = running.instances
    async with httpx.AsyncClient(base_url=running.proxy_url, headers=bearer(sub="setup")) as http:
        made = (await http.post("/grommets", json=grommet_body("followed"))).json()
    path = f"/grommets/{made['id']}"
    stop, following = asyncio.Event(), asyncio.Event()
    answers: list[tuple[str, int]] = []
    retried: list[int] = []
    seen: list[list[dict[str, Any]]] = [[], []]
    followers = [
        asyncio.create_task(_follow(first, running.proxy_url, path, seen[n], following))
        # One socket is surely on the instance that restarts; the other goes where nginx says.
        for n, first in enumerate((a.url, running.proxy_url))
    ]
    writers = [
        asyncio.create_task(_write_until(stop, running.proxy_url, answers, retried))
        for _ in range(4)
    ]
    await asyncio.sleep(1.5)
    before = len(answers)
    await asyncio.to_thread(a.restart)
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*writers)
    async with httpx.AsyncClient(base_url=running.proxy_url, headers=bearer(sub="after")) as http:
        patched = await http.patch(path, json={"material": "after-restart"})
        assert patched.status_code == 200, patched.text
        async with asyncio.timeout(20):
            while not all(s and s[-1]["body"]["material"] == "after-restart" for s in seen):
                await asyncio.sleep(0.05)
    following.set()
    reconnections = await asyncio.gather(*followers)
    conn = await asyncpg.connect(asyncpg_dsn(running.owner_url))
    try:
        names = [row["name"] for row in await conn.fetch("SELECT name FROM grommets")]
        kept = set(names)
    finally:
        await conn.close()
    created = [name for name, status in answers if status == 201]
    lost = [name for name in created if name not in kept]
    failed = [(name, status) for name, status in answers if status != 201]
    assert before > 0 and len(answers) > before
    assert lost == [], f"{len(lost)} of {len(created)} acknowledged writes lost"
    assert failed == [], f"{len(failed)} of {len(answers)} writes not acknowledged: {failed[:10]}"
    assert reconnections[0] >= 1, "the restarted instance's socket reconnected"
    assert len(names) == len(kept), "no write was made twice (the retries replayed)"
    print(
        f"restart under load: {len(answers)} writes, {len(created)} acknowledged, {len(lost)}"
        f" lost, {len(retried)} retried ({sorted(set(retried))}), reconnections {reconnections}"
    )
