"""Idempotency-Key: replay on retry, 422 on reuse, 409 while running, expiry, batches."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count
from tests.websocket_support import AsgiSocket, wait_for_session

GROMMET = {"name": "M6", "material": "brass", "diameter_mm": 6}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": f'"{key}"'}


async def test_a_retried_post_replays_the_first_answer_without_running_again(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    first = await client.post("/grommets", json=GROMMET, headers=keyed("k1"))
    retry = await client.post("/grommets", json=GROMMET, headers=keyed("k1"))
    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    for header in ("location", "etag", "content-type"):
        assert retry.headers[header] == first.headers[header]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count(admin_engine, "grommets") == 1


async def test_a_bare_key_is_the_same_key_as_its_quoted_form(client: httpx.AsyncClient) -> None:
    await client.post("/grommets", json=GROMMET, headers={"Idempotency-Key": "k2"})
    retry = await client.post("/grommets", json=GROMMET, headers=keyed("k2"))
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/grommets", {**GROMMET, "name": "other"}),
        ("POST", "/widgets", {"name": "w", "parts": []}),
        ("PATCH", "/grommets/1", {"material": "steel"}),
    ],
)
async def test_the_same_key_for_another_request_is_422(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    assert (await client.post("/grommets", json=GROMMET, headers=keyed("k3"))).status_code == 201
    reused = await client.request(method, path, json=body, headers=keyed("k3"))
    assert reused.status_code == 422
    assert reused.json()["type"] == "urn:carpool:problem:idempotency-key-reused"


async def test_a_failed_call_stores_nothing_and_leaves_its_key_free(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    bad = await client.post("/grommets", json={**GROMMET, "diameter_mm": -1}, headers=keyed("k4"))
    assert bad.status_code == 422
    assert await count(admin_engine, "idempotency_keys") == 0
    fixed = await client.post("/grommets", json=GROMMET, headers=keyed("k4"))
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


async def test_a_retried_delete_replays_204_not_404(client: httpx.AsyncClient) -> None:
    await client.post("/grommets", json=GROMMET)
    first = await client.delete("/grommets/1", headers=keyed("k5"))
    retry = await client.delete("/grommets/1", headers=keyed("k5"))
    assert first.status_code == retry.status_code == 204
    assert retry.content == b"" and retry.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("value", [b'""', b'"a', b"x" * 256, "caf\u00e9".encode()])
async def test_a_malformed_key_is_400(client: httpx.AsyncClient, value: bytes) -> None:
    headers = {b"Idempotency-Key": value}
    answer = await client.post("/grommets", json=GROMMET, headers=headers)
    assert answer.status_code == 400


async def _blocked_on_a_lock(admin_engine: AsyncEngine) -> None:
    await wait_for_session(admin_engine, "wait_event_type = 'Lock'")


async def test_a_retry_while_the_first_call_still_runs_is_409(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await client.post("/grommets", json=GROMMET)
    patch = {"material": "steel"}
    async with admin_engine.connect() as holder:
        await holder.execute(text("SELECT 1 FROM grommets WHERE id = 1 FOR UPDATE"))
        first = asyncio.create_task(client.patch("/grommets/1", json=patch, headers=keyed("k6")))
        await _blocked_on_a_lock(admin_engine)  # the first call holds its key, and waits
        busy = await client.patch("/grommets/1", json=patch, headers=keyed("k6"))
        assert busy.status_code == 409
        assert busy.json()["type"] == "urn:carpool:problem:idempotency-key-in-use"
        assert busy.headers["retry-after"] == "1"
        await holder.rollback()
    assert (await first).status_code == 200
    retry = await client.patch("/grommets/1", json=patch, headers=keyed("k6"))
    assert retry.status_code == 200 and retry.content == (await first).content


async def test_keys_expire_and_expired_rows_are_cleaned_up_by_later_writes(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    assert (await client.post("/grommets", json=GROMMET, headers=keyed("k7"))).status_code == 201
    async with admin_engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET expires_at = now() - interval '1s'"))
    # Expired: the key is free again (another request with it runs, not a 422).
    other = await client.post("/grommets", json={**GROMMET, "name": "M8"}, headers=keyed("k7"))
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    async with admin_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys SELECT '', 'old' || n, 'f', 201, '{}', null, '',"
                " now() - interval '1 hour' FROM generate_series(1, 20) AS n"
            )
        )
    assert await count(admin_engine, "idempotency_keys") == 21
    await client.post("/grommets", json={**GROMMET, "name": "M10"}, headers=keyed("k8"))
    assert await count(admin_engine, "idempotency_keys", "expires_at <= now()") == 0
    assert await count(admin_engine, "idempotency_keys") == 2


async def test_a_retried_batch_replays_its_answer_bytes(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    envelope = {
        "requests": [
            {"id": "g", "method": "POST", "path": "/grommets", "body": GROMMET},
            {"id": "r", "path": "/grommets/{{g/body/id}}"},
        ]
    }
    first = await client.post("/batch", json=envelope, headers=keyed("b1"))
    retry = await client.post("/batch", json=envelope, headers=keyed("b1"))
    assert first.status_code == retry.status_code == 200
    assert first.json()["committed"] is True
    assert retry.content == first.content
    assert await count(admin_engine, "grommets") == 1


async def test_an_item_may_not_carry_its_own_key(client: httpx.AsyncClient) -> None:
    item = {"method": "POST", "path": "/grommets", "body": GROMMET, "headers": keyed("i1")}
    answer = await client.post("/batch", json={"requests": [item]})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["pointer"] == "/requests/0/headers"


async def test_a_request_frame_with_a_key_replays_too(
    app: Any, client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    socket = await AsgiSocket(app).open()
    try:
        frame = {"method": "POST", "path": "/grommets", "body": GROMMET, "headers": keyed("f1")}
        socket.send({"id": "1", **frame})
        first = await socket.answer()
        socket.send({"id": "2", **frame})
        retry = await socket.answer()
        socket.send({"id": "3", **frame, "body": {**GROMMET, "name": "other"}})
        reused = await socket.answer()
    finally:
        socket.leave()
        await socket.ended()
    assert first["status"] == retry["status"] == 201
    assert retry["body"] == first["body"] and retry["headers"]["idempotent-replayed"] == "true"
    assert reused["status"] == 422
    assert await count(admin_engine, "grommets") == 1


def test_keys_belong_to_their_caller_and_long_subjects_stay_distinct() -> None:
    from types import SimpleNamespace

    from carpool.web.idempotency import caller_of

    def request(sub: str | None, ip: str = "203.0.113.7") -> Any:
        identity = SimpleNamespace(sub=sub, token_error=None)
        return SimpleNamespace(ctx=SimpleNamespace(identity=identity), ip=ip)

    assert caller_of(request(None)) == "ip:203.0.113.7"  # anonymous: one namespace per address
    assert caller_of(request(None, "198.51.100.1")) != caller_of(request(None))
    assert caller_of(request("alice")) == "alice"
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    assert caller_of(request(long_a)) != caller_of(request(long_b))
    assert len(caller_of(request(long_a))) <= 200


async def test_the_same_key_from_another_caller_is_another_key(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    from tests.helpers import bearer

    alice, bob = bearer(sub="alice"), bearer(sub="bob")
    first = await client.post("/grommets", json=GROMMET, headers={**keyed("shared"), **alice})
    other = {**GROMMET, "name": "M8"}
    theirs = await client.post("/grommets", json=other, headers={**keyed("shared"), **bob})
    assert first.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers  # not alice's answer, not a 422
    assert await count(admin_engine, "grommets") == 2


# -- each ending of a keyed batch ---------------------------------------------------------------


def _twice(name: str) -> dict[str, Any]:
    item = {"method": "POST", "path": "/grommets", "body": {**GROMMET, "name": name}}
    return {"atomic": True, "requests": [item, item]}


async def test_a_keyed_atomic_batch_rolled_back_by_an_item_answers_its_409_on_every_retry(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    # The duplicate name aborts the transaction: the key's answer must not be written on it.
    answers = [await client.post("/batch", json=_twice("dup"), headers=keyed("b2")) for _ in "abc"]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json()["committed"] is False
        assert [item["status"] for item in answer.json()["responses"]] == [201, 409]
        assert "idempotent-replayed" not in answer.headers  # nothing stored: it ran again
    assert await count(admin_engine, "grommets") == 0
    assert await count(admin_engine, "idempotency_keys") == 0


async def test_a_keyed_batch_whose_commit_is_refused_stores_nothing_and_runs_again(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    envelope = {"requests": [{"method": "POST", "path": "/_probe/commit-fails?name=k"}]}
    for _ in range(2):
        answer = await client.post("/batch", json=envelope, headers=keyed("b3"))
        assert answer.status_code == 409
        assert answer.json()["type"] == "urn:carpool:problem:commit-failed"
    assert await count(admin_engine, "idempotency_keys") == 0


async def test_a_keyed_batch_past_its_timeout_stores_nothing_and_runs_again(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    from tests import probe_routes
    from tests.conftest import make_container
    from tests.helpers import AUTH, create_app, served

    app = create_app(make_container(database_url, batch_timeout_s=0.5))
    app.blueprint(probe_routes.blueprint)
    envelope = {
        "requests": [
            {"method": "POST", "path": "/grommets", "body": GROMMET},
            {"path": "/_probe/sleep?s=3"},
        ]
    }
    async with served(app, base_url="http://t", headers=AUTH) as http:
        for _ in range(2):
            answer = await http.post("/batch", json=envelope, headers=keyed("b4"))
            assert answer.status_code == 504
    assert await count(admin_engine, "grommets") == 0
    assert await count(admin_engine, "idempotency_keys") == 0


async def test_a_keyed_batch_that_commits_is_replayed_and_a_failed_one_after_it_is_not_stored(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    single = {"atomic": True, "requests": [_twice("once")["requests"][0]]}
    first = await client.post("/batch", json=single, headers=keyed("b5"))
    retry = await client.post("/batch", json=single, headers=keyed("b5"))
    assert first.json()["committed"] is True and retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    # Under another key, the same name again: the item's 409 rolls the batch back.
    clash = await client.post("/batch", json=single, headers=keyed("b6"))
    assert clash.status_code == 200 and clash.json()["committed"] is False
    assert clash.json()["responses"][0]["status"] == 409
    assert await count(admin_engine, "idempotency_keys") == 1
