"""Helpers of the WebSocket tests: slow frames, and what the database says about them."""

from __future__ import annotations

import asyncio
from typing import Any, Self

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import AUTH


async def lingering_work(admin_engine: AsyncEngine, *, within: float = 10.0) -> list[Any]:
    """Sessions still in a transaction or still sleeping, once they had `within` s to end."""
    query = text(
        "SELECT pid, state, query FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND (state LIKE 'idle in transaction%'"
        "      OR (state = 'active' AND query ILIKE '%pg_sleep%'))"
    )
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with admin_engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        if not rows or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def wait_for_session(admin_engine: AsyncEngine, where: str) -> None:
    """Returns once some other session of this database matches `where` (pg_stat_activity)."""
    query = text(
        f"SELECT count(*) FROM pg_stat_activity WHERE ({where}) AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(10):
        while True:
            async with admin_engine.connect() as conn:
                if (await conn.execute(query)).scalar_one():
                    return
            await asyncio.sleep(0.02)


async def wait_for_sleeper(admin_engine: AsyncEngine) -> None:
    """Returns once some session is inside pg_sleep (the slow frame is mid-request)."""
    await wait_for_session(admin_engine, "state = 'active' AND query ILIKE '%pg_sleep%'")


def slow_write_batch(frame_id: str, name: str, seconds: float) -> dict[str, Any]:
    """A batch frame that writes a grommet, then sleeps in the database (atomic)."""
    grommet = {"name": name, "material": "brass", "diameter_mm": 5}
    return {
        "id": frame_id,
        "batch": {
            "requests": [
                {"method": "POST", "path": "/grommets", "body": grommet},
                {"path": f"/_probe/sleep?s={seconds}"},
            ]
        },
    }


class AsgiSocket:
    """The server's end of one WebSocket to an ASGI app, in the test's hands."""

    def __init__(self, app: Any, *, headers: dict[str, str] | None = None) -> None:
        """`headers`: the handshake's (default: full-scope credentials)."""
        self._app = app
        self._headers = AUTH if headers is None else headers
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.read_by_app = 0
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        message = await self._to_app.get()
        self.read_by_app += 1
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        await self._from_app.put(message)

    async def open(self) -> Self:
        """Connect; the app must accept."""
        first = await self.handshake()
        assert first["type"] == "websocket.accept", first
        return self

    async def handshake(self, *, http_refusals: bool = False) -> dict[str, Any]:
        """Connect; the app's first message (accept, close, or an HTTP refusal when
        `http_refusals` offers ASGI's websocket.http.response extension)."""
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "headers": [
                (b"host", b"carpool.test"),
                (b"x-request-id", b"outer"),
                *((name.encode(), value.encode()) for name, value in self._headers.items()),
            ],
            "subprotocols": [],
            "state": {},
            "extensions": {"websocket.http.response": {}} if http_refusals else {},
        }
        self._to_app.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(self._app(scope, self._receive, self._send))
        return await self.next_message()

    def send(self, frame: dict[str, Any]) -> None:
        self._to_app.put_nowait({"type": "websocket.receive", "text": orjson.dumps(frame).decode()})

    def leave(self, code: int = 1001) -> None:
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": code})

    async def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self._from_app.get()

    async def answer(self) -> dict[str, Any]:
        message = await self.next_message()
        assert message["type"] == "websocket.send", message
        decoded: dict[str, Any] = orjson.loads(message["text"])
        return decoded

    async def ended(self, timeout: float = 10.0) -> None:
        """Waits until the app has let go of the socket."""
        assert self.task is not None
        async with asyncio.timeout(timeout):
            await self.task
