"""Retries and tokens: an unsafe call carries an Idempotency-Key and is sent again on a 503
(after its Retry-After) or a lost answer, and writes once; a callable token is asked again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool_client import Client, ProblemError, RetryPolicy, TransactionFailed
from tests.clients.conftest import Front
from tests.conftest import count
from tests.e2e.live_server import LiveServer
from tests.helpers import grommet_body, token


async def test_an_unsafe_call_is_retried_after_503_with_the_same_key(
    front: Front, admin_engine: AsyncEngine
) -> None:
    front.faults = ["503", "503"]
    loop = asyncio.get_running_loop()
    async with Client(front.url, token=token()) as client:
        started = loop.time()
        made = await client.post("/grommets", json=grommet_body("M6 retried"))
        waited = loop.time() - started
    assert made.status == 201
    assert waited >= 2.0, "each Retry-After (1 s) was honoured"
    assert len(front.keys) == 3 and front.keys[0] is not None
    assert len(set(front.keys)) == 1, "every attempt carries the same Idempotency-Key"
    assert await count(admin_engine, "grommets") == 1


async def test_a_write_whose_answer_was_lost_is_sent_again_and_written_once(
    front: Front, admin_engine: AsyncEngine
) -> None:
    front.faults = ["drop"]
    async with Client(front.url, token=token()) as client:
        made = await client.post("/grommets", json=grommet_body("M6 lost"))
        assert made.status == 201  # the stored answer, replayed
        assert made.json()["name"] == "M6 lost"
    assert len(front.keys) == 2 and front.keys[0] == front.keys[1]
    assert await count(admin_engine, "grommets") == 1


async def test_a_transaction_retried_after_503_and_a_lost_answer_is_applied_once(
    front: Front, admin_engine: AsyncEngine
) -> None:
    front.faults = ["503", "drop"]
    loop = asyncio.get_running_loop()
    async with Client(front.url, token=token()) as client:
        started = loop.time()
        async with client.transaction() as tx:
            g = tx.post("/grommets", json=grommet_body("M6 tx lost"))
            w = tx.post(
                "/widgets",
                json={"name": "latch", "parts": [{"grommet_id": g["body"]["id"], "quantity": 2}]},
            )
        assert loop.time() - started >= 1.0, "the Retry-After (1 s) was honoured"
        assert tx.committed is True
        assert g.response.status == 201 and w.response.status == 201  # replayed answers
        assert w.response.json()["parts"][0]["grommet_id"] == g.response.json()["id"]
    assert len(front.keys) == 3 and front.keys[0] is not None
    assert len(set(front.keys)) == 1, "every attempt carries the same Idempotency-Key"
    assert await count(admin_engine, "grommets") == 1
    assert await count(admin_engine, "widgets") == 1


async def test_a_transaction_that_rolled_back_fails_again_on_its_retry(
    front: Front, admin_engine: AsyncEngine
) -> None:
    async with Client(front.url, token=token()) as client:
        await client.post("/grommets", json=grommet_body("M8 taken"))
        front.keys.clear()
        front.faults = ["drop"]
        tx = client.transaction()
        tx.post("/grommets", json=grommet_body("M9 new"))
        clash = tx.post("/grommets", json=grommet_body("M8 taken"))
        with pytest.raises(TransactionFailed) as failed:
            await tx.commit()
    assert tx.committed is False
    assert failed.value.failed is clash.response and clash.response.status == 409
    assert len(front.keys) == 2 and front.keys[0] == front.keys[1]
    assert await count(admin_engine, "grommets") == 1, "neither attempt wrote"


async def test_retries_stop_at_the_policy_and_raise_the_last_answer(front: Front) -> None:
    front.faults = ["503", "503"]
    retry = RetryPolicy(attempts=1, max_delay_s=0.01)
    async with Client(front.url, token=token(), retry=retry) as client:
        with pytest.raises(ProblemError) as unavailable:
            await client.get("/grommets/1")
    assert unavailable.value.status == 503
    assert unavailable.value.type == "urn:carpool:problem:unavailable"
    assert len(front.keys) == 2


async def test_a_callable_token_is_asked_again_for_every_request(server: LiveServer) -> None:
    handed: list[str] = []

    async def fresh() -> str:
        handed.append(token(sub="refreshing"))
        return handed[-1]

    async with Client(server.http_url, token=fresh) as client:
        await client.post("/grommets", json=grommet_body("M6"))
        await client.get("/grommets/1")
    assert len(handed) == 2


async def test_a_socket_renews_an_expiring_token_with_an_auth_frame(server: LiveServer) -> None:
    handed: list[str] = []

    def short_lived() -> str:
        handed.append(token(sub="renewing", ttl_s=3))
        return handed[-1]

    async with Client(server.http_url, token=short_lived, transport="ws") as client:
        await client.post("/grommets", json=grommet_body("M6"))
        await asyncio.sleep(4)  # past the first token's expiry
        assert (await client.get("/grommets/1")).status == 200
        assert client.socket.connections == 1, "renewed on the same socket"
    assert len(handed) >= 2
