"""The short batch form with a path asked for more than once: every occurrence answers."""

from __future__ import annotations

import httpx

from carpool.compose.envelope import parse_envelope


def test_repeated_paths_get_ids_numbered_by_occurrence() -> None:
    paths = ["/grommets/1", "/grommets/2", "/grommets/1", "/grommets/1", "/grommets/1#2"]
    envelope = parse_envelope({"load": paths}, max_items=50)
    assert [item.id for item in envelope.items] == [
        "/grommets/1",
        "/grommets/2",
        "/grommets/1#2",
        "/grommets/1#3",
        "/grommets/1#2#2",  # taken already: numbered in turn
    ]
    assert [item.path for item in envelope.items] == paths


async def test_a_repeated_path_runs_and_answers_each_time(client: httpx.AsyncClient) -> None:
    await client.post("/grommets", json={"name": "g", "material": "brass", "diameter_mm": 6})
    answer = await client.post("/batch", json={"load": ["/grommets/1", "/grommets/1"]})
    assert answer.status_code == 200
    first, second = answer.json()["responses"]
    assert (first["id"], second["id"]) == ("/grommets/1", "/grommets/1#2")
    assert first["status"] == second["status"] == 200
    assert first["body"] == second["body"]
