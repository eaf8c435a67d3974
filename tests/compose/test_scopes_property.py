"""Property: with any token, every batch item and every frame answers exactly what the single
call with that token answers, and writes exactly what the single calls write (no more)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TABLES
from tests.helpers import AUTH, bearer, token
from tests.websocket_support import AsgiSocket

# Fields two runs on the same state may legitimately differ in: the transaction's clock, and
# ids taken from a sequence (a refused insert consumes one too).
_VOLATILE = re.compile(rb'"(id|grommet_id|created_at|updated_at)":("[^"]*"|\d+)')

CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "read": bearer("catalog:read", sub="reader"),
    "write": bearer("catalog:write", sub="writer"),
    "both": bearer(sub="admin"),
    "expired": {"authorization": f"Bearer {token(ttl_s=-30)}"},
    "garbage": {"authorization": "Bearer abc.def.ghi"},
    "basic": {"authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
}

names = st.sampled_from(["A", "B", "new", "newer"])
grommet_bodies = st.fixed_dictionaries(
    {"name": names, "material": st.just("brass"), "diameter_mm": st.sampled_from([1, -1, 6])}
)
widget_bodies = st.fixed_dictionaries(
    {"name": names, "parts": st.just([{"grommet_id": 1, "quantity": 2}])}
)
seeded = st.sampled_from([1, 2, 3, 999])
items = st.one_of(
    st.tuples(
        st.just("GET"), st.sampled_from(["/grommets", "/widgets?include=grommets"]), st.none()
    ),
    st.tuples(st.just("GET"), st.builds("/grommets/{}".format, seeded), st.none()),
    st.tuples(st.just("HEAD"), st.builds("/widgets/{}".format, seeded), st.none()),
    st.tuples(st.just("POST"), st.just("/grommets"), grommet_bodies),
    st.tuples(st.just("POST"), st.just("/widgets"), widget_bodies),
    st.tuples(st.just("PATCH"), st.builds("/grommets/{}".format, seeded), grommet_bodies),
    st.tuples(st.just("DELETE"), st.builds("/grommets/{}".format, seeded), st.none()),
    st.tuples(st.just("DELETE"), st.builds("/widgets/{}".format, seeded), st.none()),
)


async def _reset(client: httpx.AsyncClient, admin_engine: AsyncEngine) -> None:
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    for name in ("A", "B", "C"):
        body: dict[str, Any] = {"name": name, "material": "brass", "diameter_mm": 6}
        assert (await client.post("/grommets", json=body, headers=AUTH)).status_code == 201
    body = {"name": "hinge", "parts": [{"grommet_id": 2, "quantity": 2}]}
    assert (await client.post("/widgets", json=body, headers=AUTH)).status_code == 201


async def _state(admin_engine: AsyncEngine) -> list[Any]:
    async with admin_engine.connect() as conn:
        grommets = await conn.execute(
            text("SELECT id, name, diameter_mm FROM grommets ORDER BY id")
        )
        widgets = await conn.execute(
            text(
                "SELECT w.id, w.name, p.grommet_id, p.quantity FROM widgets w"
                " LEFT JOIN widget_parts p ON p.widget_id = w.id ORDER BY w.id, p.grommet_id"
            )
        )
        return [list(grommets.all()), list(widgets.all())]


def _comparable(status: int, body: bytes) -> tuple[int, bytes]:
    normal = orjson.dumps(orjson.loads(body)) if body else b""
    return status, _VOLATILE.sub(b"", normal) if status < 300 else normal


def _raw(body: Any) -> bytes:
    return orjson.dumps(body) if body is not None else b""


def _item(method: str, path: str, body: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"method": method, "path": path}
    if body is not None:
        item["body"] = body
    return item


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=st.lists(items, min_size=1, max_size=5), who=st.sampled_from(sorted(CREDENTIALS)))
async def test_items_and_frames_answer_and_write_exactly_what_single_calls_do(
    app: Any,
    client: httpx.AsyncClient,
    admin_engine: AsyncEngine,
    calls: list[tuple[str, str, Any]],
    who: str,
) -> None:
    credentials = {"authorization": "", **CREDENTIALS[who]}

    # One after the other, as single calls, from the seeded state.
    await _reset(client, admin_engine)
    singles = []
    for method, path, body in calls:
        single = await client.request(method, path, json=body, headers=credentials)
        singles.append(_comparable(single.status_code, single.content))
        if single.status_code in (401, 403):
            assert single.headers["www-authenticate"].startswith("Bearer")
    after_singles = await _state(admin_engine)

    # As one non-atomic batch (each item stands or falls alone), from the same state.
    await _reset(client, admin_engine)
    envelope = {"atomic": False, "requests": [_item(*call) for call in calls]}
    batch = await client.post("/batch", json=envelope, headers=credentials)
    if batch.status_code == 401:  # POST /batch needs a valid token: nothing ran
        assert all(status == 401 for status, _ in singles)
        assert await _state(admin_engine) == after_singles
    else:
        responses = batch.json()["responses"]
        answered = [
            _comparable(
                item["status"], orjson.dumps(item["body"]) if item["body"] is not None else b""
            )
            for item in responses
        ]
        assert answered == singles
        assert await _state(admin_engine) == after_singles

    # As frames over one socket, from the same state.
    await _reset(client, admin_engine)
    socket = AsgiSocket(app, headers=CREDENTIALS[who])
    first = await socket.handshake()
    if first["type"] != "websocket.accept":  # a bad token is refused at the handshake
        await socket.ended()
        assert all(status == 401 for status, _ in singles)
        return
    framed = []
    for n, (method, path, body) in enumerate(calls):
        socket.send({"id": str(n), **_item(method, path, body)})
        answer = await socket.answer()
        framed.append(_comparable(answer["status"], _raw(answer["body"])))
    socket.leave()
    await socket.ended()
    assert framed == singles
    assert await _state(admin_engine) == after_singles
