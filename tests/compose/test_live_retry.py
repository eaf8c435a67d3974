"""Live answers whose re-run fails for a passing reason (every connection busy): retried with
backoff until they succeed, and the subscriber told when it takes longer than a bound."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import probe_routes
from tests.conftest import make_container
from tests.helpers import AUTH, create_app, served
from tests.websocket_support import AsgiSocket

SUBSCRIPTIONS = 10
CHANGES = 200


def one_connection_app(database_url: str) -> Any:
    """An app (with the probe routes) whose pool holds one connection, given up on fast."""
    container = make_container(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.05
    )
    app = create_app(container)
    app.blueprint(probe_routes.blueprint)
    return app


async def _latest_by_id(ws: AsgiSocket, seen: dict[str, dict[str, Any]]) -> None:
    """Read every update the socket sends, keeping the latest one of each subscription."""
    while True:
        update = await ws.answer()
        seen[update["id"]] = update


async def _hog(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    """Hold the pool's one connection most of the time (re-runs meanwhile get 503 busy)."""
    while not stop.is_set():
        await client.get("/_probe/sleep?s=0.3")
        await asyncio.sleep(0.02)


async def test_every_subscription_ends_on_the_last_committed_answer_while_the_pool_is_exhausted(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    app = one_connection_app(database_url)
    async with admin_engine.begin() as conn:
        for n in range(SUBSCRIPTIONS):
            await conn.execute(
                text("INSERT INTO grommets (name, material, diameter_mm) VALUES (:n, 'v0', 1)"),
                {"n": f"g{n}"},
            )
    async with served(app, headers=AUTH) as client:
        ws = await AsgiSocket(app).open()
        seen: dict[str, dict[str, Any]] = {}
        for n in range(1, SUBSCRIPTIONS + 1):  # one at a time: a first run is not retried
            ws.send({"type": "subscribe", "id": str(n), "path": f"/grommets/{n}"})
            seen[str(n)] = await ws.answer()
            assert seen[str(n)]["status"] == 200
        reader = asyncio.create_task(_latest_by_id(ws, seen))
        stop = asyncio.Event()
        hogs = [asyncio.create_task(_hog(client, stop)) for _ in range(2)]
        for change in range(1, CHANGES + 1):
            row = change % SUBSCRIPTIONS + 1
            async with admin_engine.begin() as conn:
                await conn.execute(
                    text("UPDATE grommets SET material = :m WHERE id = :id"),
                    {"m": f"v{change}", "id": row},
                )
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.gather(*hogs)
        async with admin_engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, material FROM grommets"))).all()
        final = {str(row.id): row.material for row in rows}

        def stale() -> dict[str, Any]:
            return {
                sub_id: (update["status"], (update.get("body") or {}).get("material"))
                for sub_id, update in seen.items()
                if update["status"] != 200 or update["body"]["material"] != final[sub_id]
            }

        deadline = asyncio.get_running_loop().time() + 30
        while stale() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert not stale(), f"{len(stale())} of {SUBSCRIPTIONS} stale: {stale()}"
        reader.cancel()
        ws.leave()
        await ws.ended()
        retries = app.ctx.live.stats
        assert retries.runs > CHANGES // SUBSCRIPTIONS  # the re-runs did happen


async def test_a_re_run_failing_past_the_bound_is_pushed_as_a_503_then_the_fresh_answer(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    app = one_connection_app(database_url)
    async with admin_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO grommets (name, material, diameter_mm) VALUES ('g', 'brass', 1)")
        )
    async with served(app, headers=AUTH) as client:
        ws = await AsgiSocket(app).open()
        ws.send({"type": "subscribe", "id": "s", "path": "/grommets/1"})
        assert (await ws.answer())["body"]["material"] == "brass"
        hog = asyncio.create_task(client.get("/_probe/sleep?s=6"))
        await asyncio.sleep(0.3)
        async with admin_engine.begin() as conn:
            await conn.execute(text("UPDATE grommets SET material = 'steel' WHERE id = 1"))
        notice = await ws.answer()
        assert notice["status"] == 503, notice
        assert notice["body"]["type"] == "urn:carpool:problem:busy"
        assert int(notice["headers"]["retry-after"]) >= 1
        assert notice.get("ended") is None  # the subscription lives on
        await hog
        fresh = await ws.answer()
        assert fresh["status"] == 200 and fresh["body"]["material"] == "steel"
        ws.leave()
        await ws.ended()
