"""POST /batch: envelope forms, references, order, atomicity, refusals, limits, isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import probe_routes
from tests.conftest import TABLE_NAMES, count, make_container, wait_for_idle_pool
from tests.helpers import AUTH, create_app, grommet_item, seed_catalog, served


async def batch(client: httpx.AsyncClient, envelope: Any) -> httpx.Response:
    return await client.post("/batch", json=envelope)


async def snapshot(admin_engine: AsyncEngine) -> dict[str, list[Any]]:
    """Every row of every table, to compare database states."""
    out = {}
    async with admin_engine.connect() as conn:
        for table in TABLE_NAMES:
            rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
            out[table] = [tuple(row) for row in rows]
    return out


# -- forms and answers ------------------------------------------------------------------------


async def test_get_batch_publishes_the_limits(client: httpx.AsyncClient) -> None:
    response = await client.get("/batch")
    assert response.status_code == 200
    assert response.json() == {"max_items": 50, "timeout_s": 30.0}


async def test_short_form_answers_the_same_bodies_as_single_gets(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    response = await batch(client, {"load": ["/grommets", "/widgets"]})
    assert response.status_code == 200
    answer = response.json()
    assert answer["committed"] is True
    assert [item["id"] for item in answer["responses"]] == ["/grommets", "/widgets"]
    for item in answer["responses"]:
        single = await client.get(item["id"])
        assert item["status"] == single.status_code == 200
        assert item["body"] == single.json()
    # Byte for byte: the spliced answer contains each single body verbatim.
    for path in ("/grommets", "/widgets"):
        assert (await client.get(path)).content in response.content


async def test_full_form_defaults_method_to_get_and_id_to_index(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    response = await batch(client, {"requests": [{"path": "/grommets/1"}, {"path": "/grommets/2"}]})
    answer = response.json()
    assert [(r["id"], r["status"]) for r in answer["responses"]] == [("0", 200), ("1", 200)]


async def test_item_headers_carry_the_handlers_own_headers_only(client: httpx.AsyncClient) -> None:
    response = await batch(client, {"requests": [grommet_item("M6")]})
    (item,) = response.json()["responses"]
    assert item["status"] == 201
    single = (await client.get(item["headers"]["location"])).headers["etag"]
    assert item["headers"] == {"location": f"/grommets/{item['body']['id']}", "etag": single}


async def test_empty_bodies_are_null(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    response = await batch(client, {"requests": [{"method": "DELETE", "path": "/grommets/3"}]})
    assert b'"status":204,"headers":{},"body":null' in response.content


async def test_items_inherit_outer_headers_and_may_add_their_own(client: httpx.AsyncClient) -> None:
    envelope = {"requests": [{"path": "/_probe/echo?q=1", "headers": {"X-Item": "mine"}}]}
    response = await client.post("/batch", json=envelope, headers={"X-Outer": "theirs"})
    (item,) = response.json()["responses"]
    assert item["body"] == {
        "headers": {"x-outer": "theirs", "x-item": "mine"},
        "args": {"q": ["1"]},
    }


# -- references -------------------------------------------------------------------------------


async def test_references_feed_new_ids_into_later_paths_and_bodies(
    client: httpx.AsyncClient,
) -> None:
    envelope = {
        "requests": [
            {"id": "g", **grommet_item("M6")},
            {
                "id": "w",
                "method": "POST",
                "path": "/widgets",
                "body": {
                    "name": "hinge",
                    "parts": [{"grommet_id": "{{g/body/id}}", "quantity": 4}],
                },
            },
            {"id": "r", "path": "/widgets/{{w/body/id}}?include=grommets"},
        ]
    }
    answer = (await batch(client, envelope)).json()
    g, w, r = answer["responses"]
    assert (g["status"], w["status"], r["status"]) == (201, 201, 200)
    assert w["body"]["parts"] == [{"grommet_id": g["body"]["id"], "quantity": 4}]
    assert r["body"]["parts"] == [{"grommet": g["body"], "quantity": 4}]
    assert answer["committed"] is True
    assert (await client.get(f"/widgets/{w['body']['id']}")).status_code == 200


async def test_reference_inside_a_string_is_substituted_as_text(client: httpx.AsyncClient) -> None:
    envelope = {
        "requests": [
            {"id": "g", **grommet_item("M6")},
            {"id": "h", **grommet_item("copy of {{g/body/name}} #{{g/body/id}}")},
        ]
    }
    answer = (await batch(client, envelope)).json()
    assert answer["responses"][1]["body"]["name"] == "copy of M6 #1"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/grommets/{{missing/body/id}}", "an unknown item"),
        ("/grommets/{{later/body/id}}", "an item not before it"),
        ("/grommets/{{self/body/id}}", "an item not before it"),
    ],
)
async def test_bad_references_are_424_for_the_referencing_item(
    client: httpx.AsyncClient, path: str, reason: str
) -> None:
    envelope = {
        "atomic": False,
        "requests": [{"id": "self", "path": path}, {"id": "later", **grommet_item("M6")}],
    }
    answer = (await batch(client, envelope)).json()
    first, second = answer["responses"]
    assert first["status"] == 424 and reason in first["body"]["detail"]
    assert first["body"]["type"] == "urn:carpool:problem:failed-dependency"
    assert second["status"] == 201


async def test_reference_to_a_failed_item_is_424(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    envelope = {
        "atomic": False,
        "requests": [
            {"id": "bad", **grommet_item("M6", diameter_mm=-1)},
            {"id": "uses", "path": "/grommets/{{bad/body/id}}"},
            {"id": "ok", **grommet_item("M8")},
        ],
    }
    answer = (await batch(client, envelope)).json()
    assert [r["status"] for r in answer["responses"]] == [422, 424, 201]
    assert "'bad', which failed" in answer["responses"][1]["body"]["detail"]
    assert await count(admin_engine, "grommets") == 1


async def test_reference_that_points_nowhere_is_424(client: httpx.AsyncClient) -> None:
    envelope = {
        "atomic": False,
        "requests": [{"id": "g", **grommet_item("M6")}, {"path": "/grommets/{{g/body/nope}}"}],
    }
    answer = (await batch(client, envelope)).json()
    assert answer["responses"][1]["status"] == 424


# -- atomicity --------------------------------------------------------------------------------


def _writes_with_failure_at(k: int) -> list[dict[str, Any]]:
    writes = [
        grommet_item("new-1"),
        {"method": "PATCH", "path": "/grommets/1", "body": {"material": "steel"}},
        {"method": "DELETE", "path": "/widgets/1"},
        {
            "method": "POST",
            "path": "/widgets",
            "body": {"name": "w2", "parts": [{"grommet_id": 2, "quantity": 1}]},
        },
        {"method": "DELETE", "path": "/grommets/3"},
    ]
    failing = {
        "method": "POST",
        "path": "/grommets",
        "body": {"name": "A", "material": "dup", "diameter_mm": 1},
    }
    return [*writes[:k], failing, *writes[k:]]


@pytest.mark.parametrize("k", range(6))
async def test_atomic_batch_failing_at_item_k_changes_nothing(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, k: int
) -> None:
    await seed_catalog(client)
    before = await snapshot(admin_engine)
    response = await batch(client, {"requests": _writes_with_failure_at(k)})
    assert response.status_code == 200
    answer = response.json()
    statuses = [r["status"] for r in answer["responses"]]
    assert answer["committed"] is False
    assert statuses[k] == 409
    assert all(s < 400 for s in statuses[:k])
    assert all(s == 424 for s in statuses[k + 1 :])
    assert await snapshot(admin_engine) == before


@pytest.mark.parametrize("k", [0, 2, 5])
async def test_non_atomic_batch_keeps_all_but_the_failed_items_writes(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, k: int
) -> None:
    await seed_catalog(client)
    requests = _writes_with_failure_at(k)
    # The failing item writes before it fails: its savepoint must undo exactly that write.
    requests[k] = {"method": "POST", "path": "/_probe/status/409"}
    answer = (await batch(client, {"atomic": False, "requests": requests})).json()
    statuses = [r["status"] for r in answer["responses"]]
    assert answer["committed"] is True
    assert statuses[k] == 409 and all(s < 400 for i, s in enumerate(statuses) if i != k)
    assert await count(admin_engine, "grommets", "name = 'written-then-409'") == 0
    assert await count(admin_engine, "grommets", "name = 'new-1'") == 1
    assert await count(admin_engine, "grommets", "material = 'steel'") == 1
    assert await count(admin_engine, "widgets", "name = 'w2'") == 1


async def test_safe_items_between_writes_see_earlier_writes(client: httpx.AsyncClient) -> None:
    envelope = {
        "requests": [
            {"id": "g", **grommet_item("M6")},
            {"id": "read", "path": "/grommets/{{g/body/id}}"},
            {
                "id": "p",
                "method": "PATCH",
                "path": "/grommets/{{g/body/id}}",
                "body": {"name": "M7"},
            },
            {"id": "again", "path": "/grommets/{{g/body/id}}"},
        ]
    }
    answer = (await batch(client, envelope)).json()
    assert [r["body"]["name"] for r in answer["responses"]] == ["M6", "M6", "M7", "M7"]


async def test_safe_items_run_concurrently(client: httpx.AsyncClient) -> None:
    naps = [{"path": "/_probe/nap?s=0.3"} for _ in range(5)]
    started = asyncio.get_running_loop().time()
    answer = (await batch(client, {"requests": naps})).json()
    elapsed = asyncio.get_running_loop().time() - started
    assert all(r["status"] == 200 for r in answer["responses"])
    assert elapsed < 1.2  # five 0.3 s naps one after another would take 1.5 s


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "pointer"),
    [
        ({"requests": []}, "/requests"),
        ({"requests": [{"method": "GET"}]}, "/requests/0/path"),
        ({"requests": [{"path": "/grommets", "bogus": 1}]}, "/requests/0/bogus"),
        ({"requests": [{"path": "grommets"}]}, "/requests/0/path"),
        ({"requests": [{"path": "/grommets", "method": "BREW"}]}, "/requests/0/method"),
        (
            {"requests": [{"id": "a", "path": "/grommets"}, {"id": "a", "path": "/widgets"}]},
            "/requests/1/id",
        ),
        ({"requests": [{"id": "a/b", "path": "/grommets"}]}, "/requests/0/id"),
        ({"requests": [{"path": "/grommets"}], "atomic": "yes"}, "/atomic"),
        ({"requests": [{"path": "/grommets"}], "extra": True}, "/extra"),
        ({"load": "/grommets"}, "/load"),
        ([{"path": "/grommets"}], ""),
        ({"requests": [{"path": "/grommets"}] * 51}, "/requests"),
    ],
)
async def test_malformed_envelopes_are_one_422_and_nothing_runs(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, envelope: Any, pointer: str
) -> None:
    if isinstance(envelope, dict) and envelope.get("requests"):
        # A write that must not happen, after the faulty item so that pointers stay put.
        envelope = {**envelope, "requests": [*envelope["requests"], grommet_item("never")]}
    response = await batch(client, envelope)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:carpool:problem:validation"
    assert any(e["pointer"].startswith(pointer) for e in problem["errors"]), problem
    assert await count(admin_engine, "grommets") == 0


async def test_non_json_envelopes_are_refused(client: httpx.AsyncClient) -> None:
    bad_json = await client.post(
        "/batch", content=b'{"load": [', headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    wrong_type = await client.post(
        "/batch", content=b"load=/grommets", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415


@pytest.mark.parametrize(
    "path",
    [
        "/batch",
        "/ws",
        "/./batch",
        "//batch",
        "/grommets/../batch",
        "/%62atch",
        "/batch/",
        "/ws?x=1",
    ],
)
async def test_nested_batch_or_ws_is_a_400_item(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, path: str
) -> None:
    envelope = {
        "atomic": False,
        "requests": [
            {"method": "POST", "path": path, "body": {"load": ["/grommets"]}},
            grommet_item("ok"),
        ],
    }
    answer = (await batch(client, envelope)).json()
    nested, ok = answer["responses"]
    assert nested["status"] == 400 and nested["body"]["type"] == "urn:carpool:problem:refused-item"
    assert ok["status"] == 201


@pytest.mark.parametrize("header", ["Authorization", "cookie", "COOKIE"])
async def test_items_may_not_set_authorization_or_cookie(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, header: str
) -> None:
    envelope = {"requests": [{**grommet_item("M6"), "headers": {header: "Bearer other"}}]}
    answer = (await batch(client, envelope)).json()
    assert answer["responses"][0]["status"] == 400
    assert answer["committed"] is False
    assert await count(admin_engine, "grommets") == 0


async def test_unknown_routes_and_methods_answer_like_single_requests(
    client: httpx.AsyncClient,
) -> None:
    envelope = {
        "atomic": False,
        "requests": [{"path": "/nope"}, {"method": "PUT", "path": "/grommets"}],
    }
    response = await batch(client, envelope)
    for item, (method, path) in zip(
        response.json()["responses"], [("GET", "/nope"), ("PUT", "/grommets")], strict=True
    ):
        single = await client.request(method, path)
        assert item["status"] == single.status_code
        assert single.content in response.content


# -- time, isolation, pool --------------------------------------------------------------------


async def test_batch_past_the_timeout_is_504_and_rolled_back(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    container = make_container(database_url, batch_timeout_s=0.5)
    app = create_app(container)
    app.blueprint(probe_routes.blueprint)
    async with served(app, base_url="http://t", headers=AUTH) as client:
        engine = container.database()
        for slow in ("/_probe/sleep?s=3", "/_probe/nap?s=3"):
            envelope = {"requests": [grommet_item("kept?"), {"path": slow}]}
            response = await batch(client, envelope)
            assert response.status_code == 504
            assert response.json()["type"] == "urn:carpool:problem:timeout"
            assert await count(admin_engine, "grommets") == 0
            assert await wait_for_idle_pool(engine) == 0
        assert (await batch(client, {"requests": [grommet_item("after")]})).status_code == 200
    async with admin_engine.connect() as conn:
        stuck = await conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")
        )
        assert stuck.scalar_one() == 0


async def test_a_batch_past_its_time_leaves_none_of_its_items_running(database_url: str) -> None:
    # Safe items run concurrently, a task each: past the timeout every one is cancelled and
    # waited for, so none goes on using the unit of work (or its connection) after the 504.
    container = make_container(database_url, batch_timeout_s=0.5)
    app = create_app(container)
    app.blueprint(probe_routes.blueprint)
    async with served(app, base_url="http://t", headers=AUTH) as client:
        slow = ["/_probe/nap?s=20", "/_probe/sleep?s=20", "/_probe/nap?s=20"]
        started = asyncio.get_running_loop().time()
        response = await batch(client, {"requests": [{"path": path} for path in slow]})
        assert response.status_code == 504
        assert asyncio.get_running_loop().time() - started < 10  # not 20: none was awaited
        running = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "BatchRun._run"  # type: ignore[union-attr]
        ]
        assert running == []
        assert await wait_for_idle_pool(container.database()) == 0


async def test_concurrent_batches_never_see_each_others_uncommitted_rows(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    def doomed(n: int) -> dict[str, Any]:
        # Writes, lingers with its transaction open, then fails: never committed.
        return {
            "requests": [
                grommet_item(f"doomed-{n}"),
                {"path": "/_probe/nap?s=0.2"},
                {"path": "/nope"},
            ]
        }

    def reader(n: int) -> dict[str, Any]:
        return {
            "requests": [
                grommet_item(f"kept-{n}"),
                {"path": "/_probe/nap?s=0.1"},
                {"path": "/grommets?limit=500"},
            ]
        }

    envelopes = [doomed(n) if n % 2 else reader(n) for n in range(20)]
    responses = await asyncio.gather(*(batch(client, e) for e in envelopes))
    for n, response in enumerate(responses):
        answer = response.json()
        if n % 2:
            assert answer["committed"] is False
            continue
        assert answer["committed"] is True
        names = {g["name"] for g in answer["responses"][2]["body"]["items"]}
        assert f"kept-{n}" in names
        assert not any(name.startswith("doomed") for name in names)
    assert await count(admin_engine, "grommets", "name LIKE 'doomed%'") == 0
    assert await count(admin_engine, "grommets", "name LIKE 'kept%'") == 10


async def test_head_items_answer_headers_only_like_single_head(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    envelope = {
        "atomic": False,
        "requests": [
            {"method": "HEAD", "path": "/grommets/1"},
            {"method": "HEAD", "path": "/grommets/99"},
        ],
    }
    found, missing = (await batch(client, envelope)).json()["responses"]
    assert (found["status"], found["body"]) == (200, None)
    assert (missing["status"], missing["body"]) == (404, None)
