"""Property: after any sequence of writes, every subscription's last pushed body is byte for
byte what the single GET answers at that moment."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.compose.test_live import body_text, raw_update
from tests.conftest import TABLES
from tests.websocket_support import AsgiSocket

PATHS = [
    "/grommets",
    "/grommets?limit=2",
    "/grommets/1",
    "/grommets/3",
    "/widgets",
    "/widgets?include=grommets&limit=1",
    "/widgets/1",
    "/widgets/1?include=grommets",
    "/widgets/2?include=grommets",
    "/widgets/4",
]
ids = st.integers(min_value=1, max_value=4)
parts = st.lists(
    st.fixed_dictionaries({"grommet_id": ids, "quantity": st.integers(1, 9)}),
    max_size=3,
    unique_by=lambda part: part["grommet_id"],
)
writes = st.one_of(
    st.tuples(st.just("PATCH"), st.builds("/grommets/{}".format, ids),
              st.fixed_dictionaries({"diameter_mm": st.integers(1, 50)})),
    st.tuples(st.just("PATCH"), st.builds("/widgets/{}".format, ids),
              st.fixed_dictionaries({"parts": parts})),
    st.tuples(st.just("DELETE"), st.builds("/widgets/{}".format, ids), st.none()),
    st.tuples(st.just("DELETE"), st.builds("/grommets/{}".format, ids), st.none()),
    st.tuples(st.just("POST"), st.just("/grommets"),
              st.builds(lambda n: {"name": f"g{n}", "material": "tin", "diameter_mm": 2},
                        st.integers(0, 10**6))),
    st.tuples(st.just("POST"), st.just("/widgets"),
              st.builds(lambda n, p: {"name": f"w{n}", "parts": p}, st.integers(0, 10**6), parts)),
)  # fmt: skip


async def _fresh_catalog(admin_engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    for n in range(1, 4):
        body = {"name": f"seed{n}", "material": "brass", "diameter_mm": n}
        assert (await client.post("/grommets", json=body)).status_code == 201
    for n in range(1, 3):
        body = {"name": f"w{n}", "parts": [{"grommet_id": n, "quantity": 1}]}
        assert (await client.post("/widgets", json=body)).status_code == 201


async def _converged(ws: AsgiSocket, latest: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """Reads updates until every subscription's last body is the expected one."""
    while latest != expected:
        frame, raw = await raw_update(ws, timeout=10)
        latest[frame["id"]] = body_text(raw)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(writes, min_size=1, max_size=6))
async def test_every_subscription_ends_on_the_bytes_the_single_get_answers(
    app: Any, client: httpx.AsyncClient, admin_engine: AsyncEngine,
    steps: list[tuple[str, str, Any]],
) -> None:  # fmt: skip
    await _fresh_catalog(admin_engine, client)
    ws = await AsgiSocket(app).open()
    try:
        latest: dict[str, bytes] = {}
        for n, path in enumerate(PATHS):
            ws.send({"type": "subscribe", "id": str(n), "path": path})
        for _ in PATHS:
            frame, raw = await raw_update(ws)
            latest[frame["id"]] = body_text(raw)
        for method, path, body in steps:
            content = orjson.dumps(body) if body is not None else None
            await client.request(
                method, path, content=content, headers={"content-type": "application/json"}
            )
            expected = {str(n): (await client.get(p)).content for n, p in enumerate(PATHS)}
            await _converged(ws, latest, expected)
    finally:
        ws.leave()
        await ws.ended()
