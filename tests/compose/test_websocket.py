"""`/ws` at the ASGI level, where the test plays the server: reads, closes and shutdowns it sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from tests import probe_routes
from tests.conftest import count, make_container, wait_for_idle_pool
from tests.helpers import create_app
from tests.websocket_support import (
    AsgiSocket,
    lingering_work,
    slow_write_batch,
    wait_for_sleeper,
)


async def test_at_the_in_flight_limit_the_server_stops_reading(
    socket: AsgiSocket, container: Any
) -> None:
    limit = container.settings().ws_max_in_flight
    for n in range(limit * 2 + 5):
        socket.send({"id": str(n), "path": "/_probe/nap?s=0.2"})
    await asyncio.sleep(0.1)
    # The app read the handshake, `limit` frames it runs, and at most one frame ahead.
    assert socket.read_by_app <= 1 + limit + 1
    received = [await socket.answer() for _ in range(limit * 2 + 5)]
    assert sorted(int(answer["id"]) for answer in received) == list(range(limit * 2 + 5))


async def test_a_peer_leaving_at_the_in_flight_limit_is_noticed_at_once(
    socket: AsgiSocket, container: Any
) -> None:
    # Every frame the server may run is running, and it holds none ahead: it is still reading,
    # so a peer that leaves ends the socket (its frames cancelled) without waiting for them.
    limit = container.settings().ws_max_in_flight
    for n in range(limit):
        socket.send({"id": str(n), "path": "/_probe/nap?s=30"})
    await asyncio.sleep(0.3)
    assert socket.read_by_app == 1 + limit
    socket.leave()
    assert socket.task is not None
    # Waited for, not awaited: awaiting would cancel the app's task past a timeout, and the
    # socket would then end anyway (as a server stopping).
    done, _ = await asyncio.wait({socket.task}, timeout=5)
    assert socket.task in done  # not after 30 s: the naps were cancelled


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_probe/status/422"),  # the handler wrote, then answered an error
        ("POST", "/_probe/raise"),  # the handler wrote, then raised
        ("POST", "/_probe/commit-fails"),  # the database refused the COMMIT
        ("GET", "/_probe/write"),  # a write inside a read-only frame
    ],
)
async def test_a_failed_frame_keeps_nothing_and_answers_as_http_does(
    socket: AsgiSocket,
    client: httpx.AsyncClient,
    admin_engine: AsyncEngine,
    method: str,
    path: str,
) -> None:
    socket.send({"id": "f", "method": method, "path": path})
    answer = await socket.answer()
    over_http = await client.request(method, path)

    assert answer["status"] == over_http.status_code >= 400
    assert answer["body"] == over_http.json()
    assert "Traceback" not in orjson.dumps(answer).decode()
    assert await count(admin_engine, "grommets") == 0


async def test_a_frame_reports_its_own_database_time(socket: AsgiSocket) -> None:
    socket.send({"id": "t", "path": "/grommets"})
    answer = await socket.answer()

    assert answer["headers"]["server-timing"].startswith("db;dur=")
    assert answer["headers"]["server-timing"].endswith('desc="1 queries"')


async def test_a_client_leaving_returns_every_connection_to_the_pool(
    socket: AsgiSocket, engine: Database, admin_engine: AsyncEngine
) -> None:
    socket.send(slow_write_batch("b", "doomed", 5))
    for n in range(3):
        socket.send({"id": str(n), "path": "/_probe/sleep?s=5"})
    await wait_for_sleeper(admin_engine)
    assert engine.checked_out() >= 1
    socket.leave()
    await socket.ended(timeout=3)

    assert await wait_for_idle_pool(engine) == 0
    assert await lingering_work(admin_engine) == []
    assert await count(admin_engine, "grommets") == 0


class StoppingApp:
    """An app of its own (the session's must not stop), stopped by the test or at teardown."""

    def __init__(self, application: Any, manager: LifespanManager) -> None:
        self.app = application
        self._manager = manager
        self._stopped = False

    async def stop(self) -> None:
        """The ASGI lifespan shutdown, as a server sends it when it stops."""
        if not self._stopped:
            self._stopped = True
            await self._manager.__aexit__(None, None, None)


@pytest.fixture
async def start_app(database_url: str) -> AsyncIterator[Callable[[float], Awaitable[StoppingApp]]]:
    started: list[StoppingApp] = []

    async def start(grace_s: float) -> StoppingApp:
        container = make_container(database_url, ws_shutdown_grace_s=grace_s)
        application = create_app(container)
        application.blueprint(probe_routes.blueprint)
        manager = LifespanManager(application, startup_timeout=60, shutdown_timeout=60)
        await manager.__aenter__()
        started.append(StoppingApp(application, manager))
        return started[-1]

    yield start
    for app in started:
        await app.stop()


async def test_a_stopping_server_lets_frames_finish_and_closes_with_1001(
    start_app: Callable[[float], Awaitable[StoppingApp]], admin_engine: AsyncEngine
) -> None:
    stopping = await start_app(5)
    socket = await AsgiSocket(stopping.app).open()
    socket.send(slow_write_batch("b", "kept", 0.5))
    await wait_for_sleeper(admin_engine)
    await stopping.stop()

    answer = await socket.answer()
    assert (answer["id"], answer["status"], answer["body"]["committed"]) == ("b", 200, True)
    assert await socket.next_message() == {
        "type": "websocket.close",
        "code": 1001,
        "reason": "the server is shutting down",
    }
    await socket.ended()
    assert await count(admin_engine, "grommets", "name = 'kept'") == 1


async def test_a_stopping_server_rolls_back_frames_past_the_grace_period(
    start_app: Callable[[float], Awaitable[StoppingApp]], admin_engine: AsyncEngine
) -> None:
    stopping = await start_app(0.3)
    socket = await AsgiSocket(stopping.app).open()
    socket.send(slow_write_batch("b", "doomed", 10))
    await wait_for_sleeper(admin_engine)
    started = asyncio.get_running_loop().time()
    await stopping.stop()

    assert asyncio.get_running_loop().time() - started < 3
    assert (await socket.next_message())["code"] == 1001, "no answer: the frame was rolled back"
    await socket.ended()
    assert await lingering_work(admin_engine) == []
    assert await count(admin_engine, "grommets") == 0
