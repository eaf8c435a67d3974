"""End to end: a worker killed after COMMIT, before answering; the retry replays the answer."""

from __future__ import annotations

import signal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count
from tests.e2e.live_server import live_server
from tests.helpers import AUTH

APP = "tests.e2e.crash_asgi:app"
GROMMET = {"name": "M6", "material": "brass", "diameter_mm": 6}


async def test_a_retry_after_the_worker_died_before_answering_replays_the_commit(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    key = {"Idempotency-Key": '"crash-1"'}
    async with live_server(APP, {"DATABASE_URL": database_url}) as live:
        async with httpx.AsyncClient(base_url=live.http_url, headers=AUTH) as http:
            with pytest.raises(httpx.TransportError):  # no answer: the worker is gone
                await http.post(
                    "/grommets", json=GROMMET, headers={**key, "X-Test-Die-Before-Answer": "1"}
                )
        assert await live.process.wait() == -signal.SIGKILL
    # The write and its answer were committed together before the kill.
    assert await count(admin_engine, "grommets") == 1
    assert await count(admin_engine, "idempotency_keys") == 1
    async with live_server(APP, {"DATABASE_URL": database_url}) as live:
        async with httpx.AsyncClient(base_url=live.http_url, headers=AUTH) as http:
            retry = await http.post("/grommets", json=GROMMET, headers=key)
            single = await http.get("/grommets/1")
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == "/grommets/1"
    assert retry.content == single.content  # the first call's body, byte for byte
    assert await count(admin_engine, "grommets") == 1
