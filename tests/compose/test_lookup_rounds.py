"""Lookup rounds: read-only frames of one socket share the lookups they make together (one
statement, one connection), never a value read before they arrived; writes never share."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from carpool.catalog.grommets import grommets
from carpool.data.engine import Database
from carpool.observability import metrics
from tests.conftest import wait_for_idle_pool
from tests.helpers import create_grommet
from tests.websocket_support import AsgiSocket


def unit_queries() -> tuple[float, float]:
    """(units of work finished, statements they sent), over the whole process so far."""
    metrics.flush()
    count = REGISTRY.get_sample_value("carpool_unit_of_work_queries_count") or 0.0
    total = REGISTRY.get_sample_value("carpool_unit_of_work_queries_sum") or 0.0
    return count, total


async def answers(socket: AsgiSocket, n: int) -> dict[str, dict[str, Any]]:
    received = [await socket.answer() for _ in range(n)]
    return {answer["id"]: answer for answer in received}


async def test_read_frames_sent_together_share_one_statement_and_answer_as_http(
    socket: AsgiSocket, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [await create_grommet(client, f"R{n}") for n in range(8)]
    over_http = {g["id"]: (await client.get(f"/grommets/{g['id']}")).json() for g in made}
    sent: list[list[int]] = []
    real = grommets.statements.by_ids

    async def counted(conn: Any, ids: list[int]) -> Any:
        sent.append(sorted(ids))
        return await real(conn, ids)

    monkeypatch.setattr(grommets.statements, "by_ids", counted)
    units_before, statements_before = unit_queries()
    for grommet in made:
        socket.send({"id": str(grommet["id"]), "path": f"/grommets/{grommet['id']}"})
    got = await answers(socket, len(made))
    units_after, statements_after = unit_queries()

    assert {int(i): a["body"] for i, a in got.items()} == over_http
    assert sent == [sorted(g["id"] for g in made)]  # eight lookups, one statement
    for answer in got.values():  # each frame counts the statement that answered it
        assert answer["headers"]["server-timing"].endswith('desc="1 queries"')
    # /metrics: a unit per frame, each with the statement it was answered by.
    assert (units_after - units_before, statements_after - statements_before) == (8, 8)


async def test_a_frame_sent_after_a_write_was_answered_reads_the_write(
    socket: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await create_grommet(client, "before")
    path = f"/grommets/{made['id']}"
    for n in range(3):
        socket.send({"id": f"r{n}", "path": path})
    assert {a["body"]["name"] for a in (await answers(socket, 3)).values()} == {"before"}

    socket.send({"id": "w", "method": "PATCH", "path": path, "body": {"name": "after"}})
    assert (await socket.answer())["status"] == 200
    for n in range(3):
        socket.send({"id": f"s{n}", "path": path})
    assert {a["body"]["name"] for a in (await answers(socket, 3)).values()} == {"after"}

    # A write committed elsewhere (over HTTP) is seen by the next frame too.
    assert (await client.patch(path, json={"name": "elsewhere"})).status_code == 200
    socket.send({"id": "t", "path": path})
    assert (await socket.answer())["body"]["name"] == "elsewhere"


async def test_a_frame_in_flight_keeps_nothing_a_later_frame_would_read(
    socket: AsgiSocket, client: httpx.AsyncClient
) -> None:
    """A round's loader lives as long as its frames; a frame arriving later never uses it."""
    made = await create_grommet(client, "old")
    path = f"/grommets/{made['id']}"
    # Loads the grommet, naps holding its round's loader (with "old" in it), loads it again.
    socket.send({"id": "early", "path": f"/_probe/look-then-nap/{made['id']}?s=0.5"})
    await asyncio.sleep(0.1)
    assert (await client.patch(path, json={"name": "new"})).status_code == 200
    socket.send({"id": "late", "path": path})
    late = await socket.answer()
    assert (late["id"], late["body"]["name"]) == ("late", "new")
    early = await socket.answer()
    assert (early["id"], early["body"]["names"]) == ("early", ["old", "old"])  # its own unit


async def test_write_frames_never_share_each_commits_or_fails_alone(
    socket: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await create_grommet(client, "w")
    path = f"/grommets/{made['id']}"
    socket.send({"id": "ok", "method": "PATCH", "path": path, "body": {"name": "kept"}})
    socket.send({"id": "bad", "method": "PATCH", "path": path, "body": {"name": 7}})
    got = await answers(socket, 2)
    assert (got["ok"]["status"], got["bad"]["status"]) == (200, 422)
    assert (await client.get(path)).json()["name"] == "kept"


async def test_a_socket_left_mid_lookup_leaves_no_connection_out(
    app: Any, client: httpx.AsyncClient, engine: Database
) -> None:
    made = await create_grommet(client, "gone")
    socket = await AsgiSocket(app).open()
    for n in range(10):
        socket.send({"id": str(n), "path": f"/grommets/{made['id']}"})
    await asyncio.sleep(0)  # the frames start; their shared fetch is on its way
    socket.leave()
    await socket.ended()
    assert await wait_for_idle_pool(engine) == 0
