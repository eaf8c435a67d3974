"""ETags, If-None-Match (304) and If-Match (412): singly, in batches and in frames."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.web.conditional import etag_of
from tests.compose.test_batch import snapshot
from tests.conftest import TABLES
from tests.websocket_support import AsgiSocket

GROMMET = {"name": "M6", "material": "brass", "diameter_mm": 6}


async def _grommet(client: httpx.AsyncClient, name: str = "M6") -> tuple[str, str]:
    """A new grommet: its path and its ETag."""
    created = await client.post("/grommets", json={**GROMMET, "name": name})
    assert created.status_code == 201
    return created.headers["location"], created.headers["etag"]


async def _widget(client: httpx.AsyncClient, name: str, grommet_id: int) -> tuple[str, str]:
    body = {"name": name, "parts": [{"grommet_id": grommet_id, "quantity": 2}]}
    created = await client.post("/widgets", json=body)
    assert created.status_code == 201
    return created.headers["location"], created.headers["etag"]


# -- ETag and If-None-Match -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/grommets/1", "/grommets", "/widgets?include=grommets"])
async def test_every_read_carries_a_strong_etag_of_its_body_bytes(
    client: httpx.AsyncClient, path: str
) -> None:
    _, _ = await _grommet(client)
    await _widget(client, "hinge", 1)
    answer = await client.get(path)
    assert answer.status_code == 200
    assert answer.headers["etag"] == etag_of(answer.content)
    assert not answer.headers["etag"].startswith("W/")
    head = await client.head(path)
    assert head.headers["etag"] == answer.headers["etag"] and head.content == b""


@pytest.mark.parametrize(
    "condition", ["{tag}", 'W/{tag}, "other"', '"other", {tag}', "*", '"{bare}-gzip"']
)
async def test_if_none_match_answers_304_with_no_body(
    client: httpx.AsyncClient, condition: str
) -> None:
    path, tag = await _grommet(client)
    value = condition.format(tag=tag, bare=tag.strip('"'))
    answer = await client.get(path, headers={"If-None-Match": value})
    assert answer.status_code == 304
    assert answer.content == b""
    # The 304 repeats the tag the client's cache holds (coded, if it came compressed).
    coded = f'"{tag.strip(chr(34))}-gzip"'
    assert answer.headers["etag"] == (coded if "-gzip" in value else tag)


async def test_a_changed_resource_answers_200_again(client: httpx.AsyncClient) -> None:
    path, tag = await _grommet(client)
    assert (await client.patch(path, json={"material": "steel"})).status_code == 200
    answer = await client.get(path, headers={"If-None-Match": tag})
    assert answer.status_code == 200 and answer.headers["etag"] != tag


async def test_errors_carry_no_etag_and_never_304(client: httpx.AsyncClient) -> None:
    answer = await client.get("/grommets/9", headers={"If-None-Match": "*"})
    assert answer.status_code == 404 and "etag" not in answer.headers


# -- If-Match on writes -----------------------------------------------------------------------


async def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    path, tag = await _grommet(client)
    for stale in ('"nope"', f"W/{tag}"):  # If-Match compares strongly: a weak tag never matches
        refused = await client.patch(path, json={"material": "steel"}, headers={"If-Match": stale})
        assert refused.status_code == 412
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:carpool:problem:precondition-failed"
    assert (await client.get(path)).json()["material"] == "brass"


async def test_patch_with_the_current_etag_answers_the_new_etag(client: httpx.AsyncClient) -> None:
    path, tag = await _grommet(client)
    assert (await client.get(path)).headers["etag"] == tag  # a 201 answers what GET answers
    changed = await client.patch(path, json={"material": "steel"}, headers={"If-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] == (await client.get(path)).headers["etag"] != tag
    again = await client.patch(path, json={"material": "nylon"}, headers={"If-Match": "*"})
    assert again.status_code == 200


async def test_widget_if_match_compares_the_widget_as_get_answers_it(
    client: httpx.AsyncClient,
) -> None:
    await _grommet(client)
    path, tag = await _widget(client, "hinge", 1)
    assert (await client.get(path)).headers["etag"] == tag
    renamed = await client.patch(path, json={"name": "latch"}, headers={"If-Match": tag})
    assert renamed.status_code == 200
    stale = await client.delete(path, headers={"If-Match": tag})
    assert stale.status_code == 412
    gone = await client.delete(path, headers={"If-Match": renamed.headers["etag"]})
    assert gone.status_code == 204


async def test_delete_honours_if_match_and_if_none_match_star(client: httpx.AsyncClient) -> None:
    path, tag = await _grommet(client)
    assert (await client.delete(path, headers={"If-None-Match": "*"})).status_code == 412
    assert (await client.delete(path, headers={"If-Match": '"old"'})).status_code == 412
    assert (await client.delete(path, headers={"If-Match": tag})).status_code == 204
    # Gone: the answer without conditions would be 404, so the conditions are not evaluated.
    assert (await client.delete(path, headers={"If-Match": "*"})).status_code == 404


async def test_a_write_that_cannot_evaluate_its_conditions_is_refused(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    refused = await client.post("/grommets", json=GROMMET, headers={"If-Match": '"x"'})
    assert refused.status_code == 412
    assert (await snapshot(admin_engine))["grommets"] == []


async def test_concurrent_writers_with_one_base_etag_lose_no_update(
    client: httpx.AsyncClient,
) -> None:
    path, tag = await _grommet(client)
    for round_ in range(3):
        writers = [
            client.patch(path, json={"material": f"m{round_}-{n}"}, headers={"If-Match": tag})
            for n in range(6)
        ]
        answers = await asyncio.gather(*writers)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] + [412] * 5, statuses
        (winner,) = [answer for answer in answers if answer.status_code == 200]
        stored = await client.get(path)
        assert stored.json()["material"] == winner.json()["material"]
        tag = stored.headers["etag"]


async def test_concurrent_widget_writers_with_one_base_etag_lose_no_update(
    client: httpx.AsyncClient,
) -> None:
    await _grommet(client)
    await _grommet(client, "M8")
    path, tag = await _widget(client, "hinge", 1)
    writers = [
        client.patch(
            path,
            json={"parts": [{"grommet_id": 1 + n % 2, "quantity": n + 1}]},
            headers={"If-Match": tag},
        )
        for n in range(6)
    ]
    answers = await asyncio.gather(*writers)
    assert sorted(answer.status_code for answer in answers) == [200] + [412] * 5
    (winner,) = [answer for answer in answers if answer.status_code == 200]
    stored = await client.get(path)
    assert stored.content == winner.content and stored.headers["etag"] == winner.headers["etag"]


# -- in batches -------------------------------------------------------------------------------


async def test_conditional_items_answer_byte_for_byte_as_single_calls(
    client: httpx.AsyncClient,
) -> None:
    path, tag = await _grommet(client)
    items = [
        {"id": "same", "path": path, "headers": {"If-None-Match": tag}},
        {"id": "other", "path": path, "headers": {"If-None-Match": '"other"'}},
        {
            "id": "stale",
            "method": "PATCH",
            "path": path,
            "headers": {"If-Match": '"x"'},
            "body": {"material": "steel"},
        },
    ]
    answer = await client.post("/batch", json={"atomic": False, "requests": items})
    same, other, stale = answer.json()["responses"]
    assert (same["status"], same["headers"], same["body"]) == (304, {"etag": tag}, None)
    assert (
        b'"status":304,"headers":{"etag":' + orjson.dumps(tag) + b'},"body":null' in answer.content
    )
    assert (other["status"], other["headers"]["etag"]) == (200, tag)
    assert (await client.get(path)).content in answer.content
    single = await client.patch(path, json={"material": "steel"}, headers={"If-Match": '"x"'})
    assert stale["status"] == single.status_code == 412
    assert single.content in answer.content  # the same bytes, spliced


async def test_conditions_on_the_batch_itself_are_refused_not_passed_to_items(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    items = [{"method": "POST", "path": "/grommets", "body": GROMMET}]
    for header in ("If-Match", "If-None-Match"):
        answer = await client.post("/batch", json={"requests": items}, headers={header: "*"})
        assert answer.status_code == 412
    assert (await snapshot(admin_engine))["grommets"] == []


async def test_a_batch_compare_and_swap_with_references_to_earlier_reads(
    client: httpx.AsyncClient,
) -> None:
    await _grommet(client)
    first, _ = await _widget(client, "one", 1)
    second, _ = await _widget(client, "two", 1)
    items = [
        {"id": "a", "path": first},
        {"id": "b", "path": second},
        {"method": "PATCH", "path": first, "headers": {"If-Match": "{{a/headers/etag}}"},
         "body": {"name": "one-v2"}},
        {"method": "PATCH", "path": second, "headers": {"If-Match": "{{b/headers/etag}}"},
         "body": {"name": "two-v2"}},
    ]  # fmt: skip
    answer = (await client.post("/batch", json={"requests": items})).json()
    assert answer["committed"] is True
    assert [item["status"] for item in answer["responses"]] == [200, 200, 200, 200]
    assert (await client.get(second)).json()["name"] == "two-v2"


async def test_a_conditional_batch_writes_nothing_when_one_resource_changed_meanwhile(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    await _grommet(client)
    first, first_tag = await _widget(client, "one", 1)
    second, second_tag = await _widget(client, "two", 1)
    # Someone else changes the second widget after this client read both.
    assert (await client.patch(second, json={"name": "theirs"})).status_code == 200
    before = await snapshot(admin_engine)
    items = [
        {"method": "PATCH", "path": first, "headers": {"If-Match": first_tag},
         "body": {"name": "one-v2"}},
        {"method": "PATCH", "path": second, "headers": {"If-Match": second_tag},
         "body": {"name": "two-v2"}},
        {"method": "DELETE", "path": "/grommets/1"},
    ]  # fmt: skip
    answer = (await client.post("/batch", json={"requests": items})).json()
    assert answer["committed"] is False
    assert [item["status"] for item in answer["responses"]] == [200, 412, 424]
    assert await snapshot(admin_engine) == before


# -- in frames --------------------------------------------------------------------------------


async def test_frames_carry_etags_and_honour_conditions(
    socket: AsgiSocket, client: httpx.AsyncClient
) -> None:
    path, tag = await _grommet(client)
    body = {"material": "steel"}
    socket.send({"id": "read", "path": path, "headers": {"If-None-Match": tag}})
    read = await socket.answer()
    assert (read["status"], read["headers"]["etag"], read["body"]) == (304, tag, None)
    socket.send(
        {"id": "w", "method": "PATCH", "path": path, "headers": {"If-Match": '"x"'}, "body": body}
    )
    assert (await socket.answer())["status"] == 412
    socket.send(
        {"id": "w2", "method": "PATCH", "path": path, "headers": {"If-Match": tag}, "body": body}
    )
    written = await socket.answer()
    assert written["status"] == 200
    assert written["headers"]["etag"] == (await client.get(path)).headers["etag"]


# -- property: a conditional item answers what the conditional single call answers -----------

_TAGS = st.sampled_from(["current", "weak", "other", "*", "list", "coded"])
_CONDITIONS = st.fixed_dictionaries({}, optional={"If-Match": _TAGS, "If-None-Match": _TAGS})
_CALLS = st.sampled_from(
    [
        ("GET", "/grommets/1"),
        ("GET", "/grommets"),
        ("HEAD", "/grommets/1"),
        ("GET", "/grommets/9"),
        ("PATCH", "/grommets/1"),
        ("DELETE", "/grommets/2"),
        ("PATCH", "/grommets/9"),
    ]
)


def _value(kind: str, tag: str) -> str:
    bare = tag.strip('"')
    return {
        "current": tag,
        "weak": f"W/{tag}",
        "other": '"other"',
        "*": "*",
        "list": f'"other", {tag}',
        "coded": f'"{bare}-gzip"',
    }[kind]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(call=_CALLS, conditions=_CONDITIONS)
async def test_a_conditional_item_answers_as_the_conditional_single_call(
    client: httpx.AsyncClient,
    admin_engine: AsyncEngine,
    call: tuple[str, str],
    conditions: dict[str, str],
) -> None:
    method, path = call
    async with admin_engine.begin() as conn:  # each example: grommets 1 and 2, as new
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    await client.post("/grommets", json={**GROMMET, "name": "A"})
    await client.post("/grommets", json={**GROMMET, "name": "B"})
    current = (await client.get(path.replace("/9", "/1"))).headers["etag"]
    headers = {name: _value(kind, current) for name, kind in conditions.items()}
    item: dict[str, Any] = {"method": method, "path": path, "headers": headers}
    if method == "PATCH":
        item["body"] = {"material": "steel"}
    # Atomic and failing after the item: nothing changes, so the single call meets the same state.
    answer = await client.post("/batch", json={"requests": [item, {"path": "/nope"}]})
    (got, _) = answer.json()["responses"]
    body = item.get("body")
    single = await client.request(method, path, json=body, headers=headers)
    assert got["status"] == single.status_code
    assert ("etag" in got["headers"]) == ("etag" in single.headers)
    if method in ("GET", "HEAD"):
        assert got["headers"].get("etag") == single.headers.get("etag")
    if single.status_code >= 400 or (method == "GET" and single.status_code == 200):
        assert single.content in answer.content  # the same bytes, spliced
    if not single.content:
        assert got["body"] is None
