"""The browser client's retries in Debian's Chromium, through a real HTTP server in front of
carpool that fails calls: a write retried after a 503 waits its Retry-After and carries the
same Idempotency-Key, a transaction whose answer was lost is sent again; each applies once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser_support import chromium, require_chromium
from tests.clients.conftest import Front
from tests.conftest import count
from tests.helpers import token

playwright_api = require_chromium()


@pytest.fixture
async def page(front: Front) -> AsyncIterator[Any]:
    """A page served through the front (so the client's calls go through it too; the demo
    page makes calls of its own, hence the tests' `front.only`)."""
    async with chromium(playwright_api) as browser:
        opened = await browser.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        await opened.goto(f"{front.url}/demo#token={token(sub='browser')}")
        await opened.evaluate('async () => { await import("/client.js"); }')
        opened.errors = errors
        front.seen.clear()
        yield opened


_WRITE = """async (token) => {
  const { connect } = await import("/client.js");
  const api = connect({ token });
  const started = performance.now();
  const tin = { name: "M6", material: "tin", diameter_mm: 6 };
  const made = await api.post("/grommets", { json: tin });
  return { status: made.status, name: made.body.name, waitedMs: performance.now() - started };
}"""

_TRANSACTION = """async (token) => {
  const { connect } = await import("/client.js");
  const api = connect({ token });
  const tx = api.transaction();
  const g = tx.post("/grommets", { json: { name: "M7", material: "tin", diameter_mm: 7 } });
  const parts = [{ grommet_id: g.at("body", "id"), quantity: 2 }];
  const w = tx.post("/widgets", { json: { name: "latch", parts } });
  await tx.commit();
  return { committed: tx.committed, statuses: [g.response.status, w.response.status] };
}"""


def _posts(front: Front, path: str) -> list[str | None]:
    return [key for method, at, key in front.seen if method == "POST" and at == path]


async def test_a_write_retried_after_503_keeps_its_key_and_applies_once(
    front: Front, page: Any, admin_engine: AsyncEngine
) -> None:
    front.faults, front.only = ["503"], "POST /grommets"
    got = await page.evaluate(_WRITE, token(sub="browser"))
    assert (got["status"], got["name"]) == (201, "M6")
    assert got["waitedMs"] >= 1000, "the Retry-After (1 s) was honoured"
    keys = _posts(front, "/grommets")
    assert len(keys) == 2 and keys[0] is not None
    assert keys[0] == keys[1], "the retry carries the same Idempotency-Key"
    assert await count(admin_engine, "grommets") == 1
    assert page.errors == []


async def test_a_transaction_whose_answer_was_lost_is_sent_again_and_applied_once(
    front: Front, page: Any, admin_engine: AsyncEngine
) -> None:
    front.faults, front.only = ["drop"], "POST /batch"
    got = await page.evaluate(_TRANSACTION, token(sub="browser"))
    assert got == {"committed": True, "statuses": [201, 201]}
    keys = _posts(front, "/batch")
    assert len(keys) == 2 and keys[0] is not None and keys[0] == keys[1]
    assert await count(admin_engine, "grommets") == 1
    assert await count(admin_engine, "widgets") == 1
    assert page.errors == []
