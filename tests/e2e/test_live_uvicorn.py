"""Live answers end to end: two real uvicorn workers on one database, the `websockets` client,
and a database restart."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from carpool.data import embedded, migrations
from tests.e2e.live_server import LiveServer, live_server
from tests.helpers import AUTH

APP = "asgi:app"


@pytest.fixture(scope="module")
async def workers(database_url: str) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two workers (separate processes) on the same database."""
    env = {"DATABASE_URL": database_url}
    async with live_server(APP, env) as one, live_server(APP, env) as two:
        yield one, two
    for worker in (one, two):
        assert "Traceback" not in worker.log(), worker.log()


async def frame(ws: ClientConnection, *, timeout: float = 15.0) -> tuple[dict[str, Any], bytes]:
    """The next frame, decoded, and its raw text."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str)
    return orjson.loads(raw), raw.encode()


async def quiet(ws: ClientConnection, within: float = 1.0) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), within)


def spliced(raw: bytes, body: bytes) -> bool:
    """Whether an update frame carries `body` as its body, byte for byte."""
    return raw.endswith(b',"body":' + body + b"}")


async def test_a_write_on_one_worker_reaches_a_subscriber_on_the_other(
    workers: tuple[LiveServer, LiveServer],
) -> None:
    writer, reader = workers
    async with httpx.AsyncClient(base_url=writer.http_url, headers=AUTH) as http:
        body = {"name": "M6", "material": "brass", "diameter_mm": 6}
        made = (await http.post("/grommets", json=body)).json()
        other = (await http.post("/grommets", json={**body, "name": "M8"})).json()
        path = f"/grommets/{made['id']}"
        async with connect(reader.ws_url, additional_headers=AUTH) as ws:
            await ws.send(orjson.dumps({"type": "subscribe", "id": "g", "path": path}).decode())
            first, raw = await frame(ws)
            assert first["status"] == 200 and spliced(raw, (await http.get(path)).content)

            await http.patch(f"/grommets/{other['id']}", json={"material": "tin"})
            await quiet(ws)  # an unrelated write pushes nothing

            await http.patch(path, json={"material": "steel"})
            pushed, raw = await frame(ws)
            assert pushed["body"]["material"] == "steel"
            assert spliced(raw, (await http.get(path)).content)

            await http.delete(path)
            gone, raw = await frame(ws)
            assert gone["status"] == 404 and spliced(raw, (await http.get(path)).content)


@pytest.fixture
def own_database() -> Iterator[tuple[Any, str]]:
    """A PostgreSQL of this test's own (it gets restarted), migrated."""
    with tempfile.TemporaryDirectory(prefix="carpool-restart-") as tmp:
        server, url = embedded.start_embedded(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            migrations.upgrade_sync(url)
            yield server, url
        finally:
            server.cleanup()


def restart(server: Any) -> None:
    """Restart the PostgreSQL server (fast shutdown: every connection is cut)."""
    # pgserver defines its command functions at import time (_commands._init): mypy sees none.
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user)


async def test_subscriptions_recover_after_a_database_restart_and_catch_up(
    own_database: tuple[Any, str],
) -> None:
    server, url = own_database
    async with live_server(APP, {"DATABASE_URL": url}) as worker:
        async with (
            httpx.AsyncClient(base_url=worker.http_url, headers=AUTH) as http,
            connect(worker.ws_url, additional_headers=AUTH) as ws,
        ):
            body = {"name": "M6", "material": "brass", "diameter_mm": 6}
            made = (await http.post("/grommets", json=body)).json()
            path = f"/grommets/{made['id']}"
            await ws.send(orjson.dumps({"type": "subscribe", "id": "g", "path": path}).decode())
            await frame(ws)

            await asyncio.to_thread(restart, server)
            # Written at once, likely before the worker listens again: caught up on reconnect.
            for _ in range(50):
                response = await http.patch(path, json={"material": "steel"})
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.1)  # the pool's connections died with the server
            pushed, raw = await frame(ws, timeout=30)
            assert pushed["body"]["material"] == "steel"
            assert spliced(raw, (await http.get(path)).content)

            await http.patch(path, json={"material": "tin"})  # and it listens again
            pushed, _ = await frame(ws)
            assert pushed["body"]["material"] == "tin"
        await worker.stop()
