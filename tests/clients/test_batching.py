"""The Python client against a real uvicorn: calls made together cost one `POST /batch`, and
each caller gets exactly what its single request answers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from carpool_client import Client, ProblemError
from tests.clients.conftest import calls
from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH, grommet_body, token


async def _grommets(server: LiveServer, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        made = [await http.post("/grommets", json=grommet_body(f"G{n}")) for n in range(count)]
    return [answer.json()["id"] for answer in made]


async def _singles(server: LiveServer, paths: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http:
        return [await http.get(path) for path in paths]


async def test_twenty_concurrent_gets_cost_one_batch_and_answer_as_the_single_gets(
    server: LiveServer,
) -> None:
    ids = await _grommets(server, 19)
    paths = [f"/grommets/{i}" for i in ids] + ["/grommets/999"]  # one of them a 404
    before = await calls(server.http_url, route="/batch", method="POST")
    singles_before = await calls(
        server.http_url, route="/grommets/{grommet_id}", method="GET", transport="single"
    )
    async with Client(server.http_url, token=token(), raise_for_status=False) as client:
        answers = await asyncio.gather(*(client.get(path) for path in paths))
    assert await calls(server.http_url, route="/batch", method="POST") == before + 1
    after = await calls(
        server.http_url, route="/grommets/{grommet_id}", method="GET", transport="single"
    )
    assert after == singles_before, "no call went out on its own"
    for answer, single in zip(answers, await _singles(server, paths), strict=True):
        assert answer.status == single.status_code
        assert answer.content == single.content  # the very bytes
        assert answer.headers.get("etag") == single.headers.get("etag")
    assert answers[-1].status == 404
    assert answers[-1].json()["type"] == "urn:carpool:problem:not-found"


async def test_a_lone_call_is_a_plain_request_and_more_than_max_items_are_split(
    server: LiveServer,
) -> None:
    ids = await _grommets(server, 3)
    batches = await calls(server.http_url, route="/batch", method="POST")
    async with Client(server.http_url, token=token()) as client:
        alone = await client.get(f"/grommets/{ids[0]}")
        assert "content-type" in alone.headers  # a plain answer's headers, transport ones too
        assert await calls(server.http_url, route="/batch", method="POST") == batches
        # The server's max_items is 50: 120 calls made together are three batches.
        paths = [f"/grommets/{ids[n % 3]}" for n in range(120)]
        answers = await asyncio.gather(*(client.get(path) for path in paths))
    assert await calls(server.http_url, route="/batch", method="POST") == batches + 3
    assert [answer.json()["id"] for answer in answers] == [ids[n % 3] for n in range(120)]


async def test_calls_within_the_window_share_a_batch_and_unsafe_ones_go_alone(
    server: LiveServer,
) -> None:
    (gid,) = await _grommets(server, 1)
    batches = await calls(server.http_url, route="/batch", method="POST")
    async with Client(server.http_url, token=token(), batch_window_s=0.2) as client:

        async def later(delay: float) -> int:
            await asyncio.sleep(delay)
            return (await client.get(f"/grommets/{gid}")).status

        statuses = await asyncio.gather(later(0), later(0.05), later(0.1))
        patched = await client.patch(f"/grommets/{gid}", json={"material": "steel"})
    assert list(statuses) == [200, 200, 200]
    assert patched.json()["material"] == "steel"
    assert await calls(server.http_url, route="/batch", method="POST") == batches + 1


async def test_error_answers_raise_a_typed_problem_unless_told_not_to(server: LiveServer) -> None:
    async with Client(server.http_url, token=token()) as client:
        with pytest.raises(ProblemError) as missing:
            await client.get("/grommets/999")
        assert (missing.value.status, missing.value.title) == (404, "Not Found")
        assert missing.value.type == "urn:carpool:problem:not-found"
        assert missing.value.detail == "grommet 999 does not exist"
        with pytest.raises(ProblemError) as invalid:
            await client.post("/grommets", json={"name": "M5", "material": "x", "diameter_mm": -5})
        assert invalid.value.status == 422
        assert invalid.value.errors[0]["pointer"] == "/diameter_mm"
        answer = await client.get("/grommets/999", raise_for_status=False)
        assert answer.status == 404
        assert answer.json()["title"] == "Not Found"
    async with Client(server.http_url) as anonymous:
        with pytest.raises(ProblemError) as refused:
            await anonymous.get("/grommets/1")
        assert refused.value.status == 401


async def test_typed_operations_answer_models_and_are_batched_like_any_call(
    server: LiveServer,
) -> None:
    async with Client(server.http_url, token=token()) as client:
        made = await client.create_grommet(
            body={"name": "M8 typed", "material": "brass", "diameter_mm": 8}
        )
        widget = await client.create_widget(
            body={"name": "typed", "parts": [{"grommet_id": made["id"], "quantity": 2}]}
        )
        batches = await calls(server.http_url, route="/batch", method="POST")
        grommet, embedded = await asyncio.gather(
            client.get_grommet(grommet_id=made["id"]),
            client.get_widget(widget_id=widget["id"], include="grommets"),
        )
        assert await calls(server.http_url, route="/batch", method="POST") == batches + 1
        assert grommet == made
        assert embedded["parts"] == [{"grommet": made, "quantity": 2}]
        page = await client.list_grommets(limit=1)
        assert page["items"] == [made] and page["next"] is None
        await client.delete_widget(widget_id=widget["id"])
        with pytest.raises(ProblemError):
            await client.get_widget(widget_id=widget["id"])


async def test_a_caller_that_stops_waiting_leaves_the_others_their_answers(
    server: LiveServer,
) -> None:
    ids = await _grommets(server, 3)
    async with Client(server.http_url, token=token(), batch_window_s=0.05) as client:
        calls_made = [asyncio.ensure_future(client.get(f"/grommets/{i}")) for i in ids]
        await asyncio.sleep(0)
        calls_made[1].cancel()
        done = await asyncio.gather(*calls_made, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [answer.json()["id"] for answer in (done[0], done[2])] == [ids[0], ids[2]]  # type: ignore[union-attr]
