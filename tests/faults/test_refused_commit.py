"""A COMMIT the database refuses (a deferred constraint): the answer says so, nothing is kept."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count
from tests.faults import tally
from tests.helpers import assert_problem
from tests.websocket_support import AsgiSocket


async def test_a_refused_commit_is_a_409_and_nothing_is_kept_however_called(
    app: Any, client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    single = await client.post("/_probe/commit-fails", params={"name": "single"})
    assert_problem(single, 409, "commit-failed")
    batch = await client.post(
        "/batch",
        json={"requests": [{"method": "POST", "path": "/_probe/commit-fails?name=item"}]},
    )
    assert_problem(batch, 409, "commit-failed")  # the batch's COMMIT: no `committed: true` lie
    socket = await AsgiSocket(app).open()
    try:
        socket.send({"id": "f", "method": "POST", "path": "/_probe/commit-fails?name=frame"})
        frame = await socket.answer()
    finally:
        socket.leave()
        await socket.ended()
    assert frame["status"] == 409
    assert await count(admin_engine, "grommets") == 0
    tally.record(refused_commit_409=3, refused_commit_kept=await count(admin_engine, "grommets"))
