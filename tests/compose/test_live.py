"""Live answers over /ws (in process): subscribe, updates after committed changes, unsubscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.websocket_support import AsgiSocket


@pytest.fixture
def ws(socket: AsgiSocket) -> AsgiSocket:
    """The conftest's socket, by this module's name for it."""
    return socket


async def grommet(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "material": "brass", "diameter_mm": 5, **fields}
    response = await client.post("/grommets", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def widget(client: httpx.AsyncClient, name: str, parts: list[tuple[int, int]]) -> int:
    body = {"name": name, "parts": [{"grommet_id": g, "quantity": q} for g, q in parts]}
    response = await client.post("/widgets", json=body)
    assert response.status_code == 201, response.text
    widget_id: int = response.json()["id"]
    return widget_id


async def raw_update(ws: AsgiSocket, timeout: float = 10.0) -> tuple[dict[str, Any], str]:
    message = await ws.next_message(timeout)
    assert message["type"] == "websocket.send", message
    return orjson.loads(message["text"]), message["text"]


async def update(ws: AsgiSocket, timeout: float = 10.0) -> dict[str, Any]:
    return (await raw_update(ws, timeout))[0]


async def no_frame(ws: AsgiSocket, within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await ws.next_message(within)


def body_text(raw: str) -> bytes:
    """The body value of an update frame, as the bytes it was spliced from."""
    head = '"body":'
    start = raw.index(head) + len(head)
    end = raw.rindex(',"ended"') if raw.endswith(',"ended":true}') else len(raw) - 1
    return raw[start:end].encode()


async def test_subscribe_answers_the_get_at_once_then_pushes_its_new_bytes_after_a_commit(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await grommet(client, "M6")
    ws.send({"type": "subscribe", "id": "s1", "path": f"/grommets/{made['id']}"})
    first, raw = await raw_update(ws)
    single = await client.get(f"/grommets/{made['id']}")
    assert first["type"] == "update" and first["id"] == "s1" and first["status"] == 200
    assert body_text(raw) == single.content
    assert first["headers"]["etag"].startswith('"')

    await client.patch(f"/grommets/{made['id']}", json={"material": "steel"})
    pushed, raw = await raw_update(ws)
    assert pushed["status"] == 200 and pushed["body"]["material"] == "steel"
    assert body_text(raw) == (await client.get(f"/grommets/{made['id']}")).content
    assert pushed["headers"]["etag"] != first["headers"]["etag"]


async def subscribe(ws: AsgiSocket, sub_id: str, path: str, **extra: Any) -> dict[str, Any]:
    ws.send({"type": "subscribe", "id": sub_id, "path": path, **extra})
    return await update(ws)


async def test_writes_to_rows_a_subscription_did_not_read_push_nothing(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    watched, other = await grommet(client, "watched"), await grommet(client, "other")
    await subscribe(ws, "s", f"/grommets/{watched['id']}")
    await client.patch(f"/grommets/{other['id']}", json={"material": "steel"})
    await widget(client, "unrelated", [(other["id"], 1)])
    await no_frame(ws)


async def test_a_rolled_back_batch_pushes_nothing(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await grommet(client, "M6")
    await subscribe(ws, "s", f"/grommets/{made['id']}")
    await subscribe(ws, "page", "/grommets")
    envelope = {
        "requests": [
            {"method": "PATCH", "path": f"/grommets/{made['id']}", "body": {"material": "tin"}},
            {
                "method": "POST",
                "path": "/grommets",
                "body": {"name": "new", "material": "x", "diameter_mm": 1},
            },
            {"method": "PATCH", "path": "/grommets/999999", "body": {"material": "tin"}},
        ]
    }
    answer = (await client.post("/batch", json=envelope)).json()
    assert answer["committed"] is False
    await no_frame(ws)


async def test_a_batch_touching_five_widgets_pushes_once_per_affected_subscription(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    g = await grommet(client, "g")
    ids = [await widget(client, f"w{i}", [(g["id"], 1)]) for i in range(6)]
    await subscribe(ws, "page", "/widgets")
    await subscribe(ws, "first", f"/widgets/{ids[0]}")
    await subscribe(ws, "untouched", f"/widgets/{ids[5]}")
    envelope = {
        "requests": [
            {
                "method": "PATCH",
                "path": f"/widgets/{i}",
                "body": {"parts": [{"grommet_id": g["id"], "quantity": 7}]},
            }
            for i in ids[:5]
        ]
    }
    assert (await client.post("/batch", json=envelope)).json()["committed"] is True
    pushed = {(await update(ws))["id"] for _ in range(2)}
    assert pushed == {"page", "first"}
    await no_frame(ws)


async def test_a_deleted_resource_pushes_its_404_and_stays_subscribed(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    g = await grommet(client, "g")
    w = await widget(client, "w", [(g["id"], 2)])
    await subscribe(ws, "s", f"/widgets/{w}?include=grommets")
    assert (await client.delete(f"/widgets/{w}")).status_code == 204
    gone, raw = await raw_update(ws)
    assert gone["status"] == 404 and "ended" not in gone
    assert body_text(raw) == (await client.get(f"/widgets/{w}?include=grommets")).content


async def test_an_include_view_follows_the_grommets_it_embeds(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    g = await grommet(client, "g")
    w = await widget(client, "w", [(g["id"], 2)])
    await subscribe(ws, "plain", f"/widgets/{w}")
    await subscribe(ws, "full", f"/widgets/{w}?include=grommets")
    await client.patch(f"/grommets/{g['id']}", json={"diameter_mm": 9})
    pushed = await update(ws)
    assert pushed["id"] == "full"
    assert pushed["body"]["parts"][0]["grommet"]["diameter_mm"] == 9
    await no_frame(ws)


async def test_a_page_follows_rows_that_appear_in_it(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    first = await subscribe(ws, "page", "/grommets?limit=2")
    assert first["body"] == {"items": [], "next": None}
    made = await grommet(client, "a")
    pushed, raw = await raw_update(ws)
    assert [item["id"] for item in pushed["body"]["items"]] == [made["id"]]
    assert body_text(raw) == (await client.get("/grommets?limit=2")).content


async def test_if_none_match_skips_an_answer_the_client_already_has(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await grommet(client, "g")
    path = f"/grommets/{made['id']}"
    etag = (await subscribe(ws, "a", path))["headers"]["etag"]
    ws.send({"type": "subscribe", "id": "b", "path": path, "if_none_match": etag})
    await no_frame(ws)
    ws.send({"type": "subscribe", "id": "c", "path": path, "if_none_match": '"stale"'})
    assert (await update(ws))["id"] == "c"
    await client.patch(path, json={"material": "steel"})
    assert {(await update(ws))["id"] for _ in range(3)} == {"a", "b", "c"}


async def test_unsubscribe_ends_with_a_204_update_and_no_push_follows(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await grommet(client, "g")
    await subscribe(ws, "s", f"/grommets/{made['id']}")
    ws.send({"type": "unsubscribe", "id": "s"})
    ended = await update(ws)
    assert ended == {
        "type": "update",
        "id": "s",
        "status": 204,
        "headers": {},
        "body": None,
        "ended": True,
    }
    await client.patch(f"/grommets/{made['id']}", json={"material": "steel"})
    await no_frame(ws)
    ws.send({"type": "unsubscribe", "id": "s"})
    again = await update(ws)
    assert again["status"] == 404 and again["ended"] is True


@pytest.mark.parametrize(
    ("path", "status"), [("/nope", 404), ("/batch", 400), ("/grommets?limit=0", 422)]
)
async def test_a_subscription_that_reads_nothing_ends_with_its_error(
    ws: AsgiSocket, path: str, status: int
) -> None:
    refused = await subscribe(ws, "s", path)
    assert refused["status"] == status and refused["ended"] is True


async def test_bad_subscription_frames_are_answered_400_and_the_socket_lives(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    for frame in (
        {"type": "subscribe", "id": "s"},
        {"type": "subscribe", "id": "s", "path": "/grommets", "extra": 1},
        {"type": "subscribe", "id": 3, "path": "/grommets"},
        {"type": "dance", "id": "s"},
        {"type": 7, "id": "s"},
    ):
        ws.send(frame)
        answer = await update(ws)
        assert answer["status"] == 400, frame
        assert answer["body"]["type"] == "urn:carpool:problem:bad-frame"
    await subscribe(ws, "ok", "/grommets")
    ws.send({"type": "subscribe", "id": "ok", "path": "/widgets"})
    duplicate = await update(ws)
    assert duplicate["status"] == 409 and duplicate["ended"] is True


async def test_a_socket_past_ws_max_subscriptions_gets_a_429_update(
    ws: AsgiSocket, container: Any
) -> None:
    limit = container.settings().ws_max_subscriptions
    for n in range(limit):
        ws.send({"type": "subscribe", "id": f"s{n}", "path": f"/grommets/{n + 1}"})
    statuses = [(await update(ws))["status"] for _ in range(limit)]
    assert statuses == [404] * limit
    refused = await subscribe(ws, "one-more", "/grommets/1")
    assert refused["status"] == 429 and refused["ended"] is True
    assert refused["body"]["type"] == "urn:carpool:problem:too-many-subscriptions"


async def test_request_frames_still_work_beside_subscriptions(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    await subscribe(ws, "page", "/grommets")
    ws.send(
        {
            "id": "r",
            "method": "POST",
            "path": "/grommets",
            "body": {"name": "g", "material": "brass", "diameter_mm": 3},
        }
    )
    frames = [await update(ws) for _ in range(2)]
    by_kind = {frame.get("type", "answer"): frame for frame in frames}
    assert by_kind["answer"]["status"] == 201
    assert len(by_kind["update"]["body"]["items"]) == 1
    await asyncio.sleep(0)


async def test_a_worker_past_live_max_subscriptions_answers_a_503_update(database_url: str) -> None:
    from asgi_lifespan import LifespanManager

    from tests.conftest import make_container
    from tests.helpers import create_app

    small = create_app(make_container(database_url, live_max_subscriptions=2))
    async with LifespanManager(small, startup_timeout=60, shutdown_timeout=60):
        one, two = await AsgiSocket(small).open(), await AsgiSocket(small).open()
        await subscribe(one, "a", "/grommets")
        await subscribe(two, "b", "/widgets")
        full = await subscribe(two, "c", "/widgets/1")
        assert full["status"] == 503 and full["ended"] is True
        assert full["body"]["type"] == "urn:carpool:problem:subscriptions-full"
        one.leave()
        await one.ended()
        assert (await subscribe(two, "c", "/widgets/1"))["status"] == 404  # room again
        two.leave()
        await two.ended()


async def test_a_401_on_a_later_run_is_pushed_and_ends_the_subscription(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    made = await grommet(client, "g")
    path = f"/_probe/guarded/{made['id']}"
    assert (await subscribe(ws, "s", path))["status"] == 200
    await client.patch(f"/grommets/{made['id']}", json={"material": "revoked"})
    ended = await update(ws)
    assert ended["status"] == 401 and ended["ended"] is True
    await client.patch(f"/grommets/{made['id']}", json={"material": "brass"})
    await no_frame(ws)


async def test_subscriptions_re_run_together_share_their_lookups(
    app: Any, ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    g = await grommet(client, "shared")
    ids = [await widget(client, f"w{n}", [(g["id"], n + 1)]) for n in range(20)]
    for w in ids:
        ws.send({"type": "subscribe", "id": str(w), "path": f"/widgets/{w}?include=grommets"})
    for _ in ids:
        await update(ws)
    stats = app.ctx.live.stats
    before = (stats.rounds, stats.runs, stats.queries)
    await client.patch(f"/grommets/{g['id']}", json={"diameter_mm": 12})
    assert {(await update(ws))["id"] for _ in ids} == {str(w) for w in ids}
    for _ in range(100):  # the round adds up its queries as its unit of work ends
        if stats.queries != before[2]:
            break
        await asyncio.sleep(0.02)
    rounds, runs, queries = (
        a - b for a, b in zip((stats.rounds, stats.runs, stats.queries), before, strict=True)
    )
    assert (rounds, runs) == (1, 20)
    assert queries == 3, "widgets, parts and grommets: one query each for all 20 views"


async def test_after_a_lost_listen_connection_every_subscription_catches_up(
    database_url: str, admin_engine: Any
) -> None:
    from asgi_lifespan import LifespanManager
    from dependency_injector import providers
    from sqlalchemy import text

    from carpool.data.changes import ChangeListener, connect_kwargs
    from tests.conftest import make_container
    from tests.helpers import create_app

    async def slow_to_come_back(url: str) -> AsyncIterator[ChangeListener]:
        listener = ChangeListener(connect_kwargs(url), backoff_s=(1.5, 1.5))
        yield listener
        await listener.close()

    container = make_container(database_url)
    container.change_listener.override(
        providers.Resource(slow_to_come_back, container.database_url)
    )
    app = create_app(container)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        async with admin_engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO grommets (name, material, diameter_mm) VALUES ('g', 'brass', 1)")
            )
        ws = await AsgiSocket(app).open()
        assert (await subscribe(ws, "s", "/grommets/1"))["body"]["material"] == "brass"
        listener = app.ctx.live._listener
        async with admin_engine.begin() as conn:
            await conn.execute(text(f"SELECT pg_terminate_backend({listener.backend_pid})"))
        while listener.listening:
            await asyncio.sleep(0.01)
        async with admin_engine.begin() as conn:  # nobody listens: this NOTIFY is lost
            await conn.execute(text("UPDATE grommets SET material = 'steel' WHERE id = 1"))
        assert not listener.listening
        caught_up = await update(ws)
        assert caught_up["body"]["material"] == "steel"
        assert listener.reconnections == 1
        ws.leave()
        await ws.ended()


async def test_subscription_frames_and_updates_match_the_asyncapi_document(
    ws: AsgiSocket, client: httpx.AsyncClient
) -> None:
    from tests.helpers import ApiDocument

    api = ApiDocument((await client.get("/asyncapi.json")).json())

    def errors(message: str, frame: dict[str, Any]) -> Any:
        return api.errors(f"/components/messages/{message}/payload", frame)

    made = await grommet(client, "g")
    subscribe_frame = {"type": "subscribe", "id": "s", "path": f"/grommets/{made['id']}"}
    assert not errors("subscribe", subscribe_frame)
    assert not errors("update", await subscribe(ws, "s", subscribe_frame["path"]))
    await client.patch(f"/grommets/{made['id']}", json={"material": "steel"})
    assert not errors("update", await update(ws))
    assert not errors("unsubscribe", {"type": "unsubscribe", "id": "s"})
    ws.send({"type": "unsubscribe", "id": "s"})
    assert not errors("update", await update(ws))
    assert errors("subscribe", {"type": "subscribe", "id": "s"}), "path is required"
