"""Transactions: later calls use earlier answers through references the client builds; an
atomic one fails as a whole, with every item's answer at hand."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool_client import Client, ProblemError, TransactionFailed
from tests.conftest import count
from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH, grommet_body, token


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_later_calls_use_earlier_answers_and_all_commit(
    server: LiveServer, transport: str
) -> None:
    async with Client(server.http_url, token=token(), transport=transport) as client:  # type: ignore[arg-type]
        async with client.transaction() as tx:
            g = tx.post("/grommets", json=grommet_body("M6 nylon", material="nylon"))
            w = tx.post(
                "/widgets",
                json={"name": "latch", "parts": [{"grommet_id": g["body"]["id"], "quantity": 4}]},
            )
            r = tx.get(f"/widgets/{w.ref('/body/id')}?include=grommets")
        assert tx.committed is True
        assert str(g["body"]["id"]) == "{{0/body/id}}"
        assert g.response.status == 201 and w.response.status == 201
        assert w.response.json()["parts"] == [
            {"grommet_id": g.response.json()["id"], "quantity": 4}
        ]
        assert r.response.json()["parts"][0]["grommet"] == g.response.json()
        assert r.response.headers["etag"]
        single = await client.get(f"/widgets/{w.response.json()['id']}?include=grommets")
        assert single.content == r.response.content


async def test_a_failed_atomic_transaction_writes_nothing_and_shows_every_answer(
    server: LiveServer, admin_engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        await http.post("/grommets", json=grommet_body("M4 brass"))
    async with Client(server.http_url, token=token()) as client:
        tx = client.transaction()
        patch = tx.patch("/grommets/1", json={"material": "steel"})
        clash = tx.post("/grommets", json=grommet_body("M4 brass"))
        later = tx.delete("/grommets/1")
        with pytest.raises(TransactionFailed) as failed:
            await tx.commit()
        assert [r.status for r in failed.value.responses] == [200, 409, 424]
        assert failed.value.failed is clash.response
        assert patch.response.json()["material"] == "steel"  # as it would have been
        assert later.response.json()["type"] == "urn:carpool:problem:failed-dependency"
        assert tx.committed is False
        assert (await client.get("/grommets/1")).json()["material"] == "brass"
    assert await count(admin_engine, "grommets") == 1


async def test_a_non_atomic_transaction_keeps_what_succeeded(server: LiveServer) -> None:
    async with Client(server.http_url, token=token()) as client:
        tx = client.transaction(atomic=False)
        bad = tx.post("/grommets", json=grommet_body("M5", -5))
        uses_bad = tx.get(f"/grommets/{bad['body']['id']}")
        good = tx.post("/grommets", json=grommet_body("M7"))
        answers = await tx.commit()
        assert [a.status for a in answers] == [422, 424, 201]
        assert bad.response.json()["errors"][0]["pointer"] == "/diameter_mm"
        assert uses_bad.response.status == 424
        assert (await client.get(good.response.headers["location"])).status == 200


async def test_a_refused_envelope_raises_its_problem(server: LiveServer) -> None:
    async with Client(server.http_url, token=token()) as client:
        tx = client.transaction()
        for n in range(51):  # past max_items: the batch is refused before anything runs
            tx.get(f"/grommets/{n + 1}")
        with pytest.raises(ProblemError) as refused:
            await tx.commit()
        assert refused.value.status == 422
