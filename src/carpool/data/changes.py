"""Committed changes, as PostgreSQL announces them: the worker's one LISTEN connection.

Triggers (migration 0002) NOTIFY `carpool_changes` with `{"table", "ids"}` for every statement
that writes the catalog; PostgreSQL delivers a notification only once its transaction has
committed, to every session listening, on any host. `ChangeListener` holds one connection per
worker for that, reconnects with backoff when it is lost (a database restart) and then tells
its consumers to catch up, since notifications sent meanwhile were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from carpool.data.engine import asyncpg_dsn

log = logging.getLogger("carpool.changes")
CHANNEL = "carpool_changes"


@dataclass(frozen=True, slots=True)
class Change:
    """Rows of `table` a committed transaction wrote: `ids` (None: any row, e.g. a TRUNCATE)."""

    table: str
    ids: frozenset[int] | None


def parse_change(payload: str) -> Change | None:
    """The change a notification announces; None for a payload carpool did not write."""
    try:
        data = orjson.loads(payload)
        table, ids = data["table"], data["ids"]
        if not isinstance(table, str) or not (ids is None or isinstance(ids, list)):
            return None
        return Change(table, None if ids is None else frozenset(int(i) for i in ids))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


OnChanges = Callable[[list[Change]], None]
OnResume = Callable[[], None]


class ChangeListener:
    """The worker's LISTEN connection, opened by the first `start()` and kept until `close()`.

    Consumers get the changes of each burst of notifications (`on_changes`, on the event loop)
    and, after every reconnection, `on_resume`: what they depend on may have changed unseen.
    """

    def __init__(
        self,
        connect_kwargs: dict[str, Any],
        *,
        backoff_s: tuple[float, float] = (0.05, 5.0),
        check_every_s: float = 5.0,
    ) -> None:
        self._connect_kwargs = connect_kwargs
        self._backoff_s = backoff_s
        self._check_every_s = check_every_s
        self._on_changes: list[OnChanges] = []
        self._on_resume: list[OnResume] = []
        self._pending: list[Change] = []
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnections = 0
        self.backend_pid: int | None = None  # of the listening session, while there is one

    def consume(self, on_changes: OnChanges, on_resume: OnResume) -> None:
        """Call `on_changes` with every burst of changes, `on_resume` after each reconnection."""
        self._on_changes.append(on_changes)
        self._on_resume.append(on_resume)

    @property
    def listening(self) -> bool:
        """Whether the connection is up and listening right now."""
        return self._listening.is_set()

    async def start(self, *, timeout_s: float = 10.0) -> None:
        """Listen (if not yet); returns once listening. TimeoutError if the database is away."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep_listening(), name="carpool-listen")
        await asyncio.wait_for(self._listening.wait(), timeout_s)

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_listening(self) -> None:
        failures = 0
        connected_before = False
        while True:
            try:
                conn: asyncpg.Connection = await asyncpg.connect(**self._connect_kwargs)
            except Exception as exc:  # the server is away, refuses us, or is starting up
                failures += 1
                delay = min(self._backoff_s[0] * 2 ** min(failures, 16), self._backoff_s[1])
                log.warning("cannot listen for changes (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                await self._listen(conn, resumed=connected_before)
                connected_before = True
                await self._watch(conn)
            except Exception as exc:  # whatever broke the connection, listening must go on
                log.warning("lost the change notifications connection: %s", exc)
            finally:
                self._listening.clear()
                self.backend_pid = None
                with contextlib.suppress(Exception):
                    conn.terminate()
            if connected_before:
                self.reconnections += 1
            await asyncio.sleep(self._backoff_s[0])

    async def _listen(self, conn: asyncpg.Connection, *, resumed: bool) -> None:
        await conn.add_listener(CHANNEL, self._notified)
        self.backend_pid = conn.get_server_pid()
        self._listening.set()
        if resumed:
            log.info("listening for changes again; catching up")
            for resume in self._on_resume:
                resume()

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Returns when the connection is gone (its end is noticed at the latest on a check)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._check_every_s)
                return
            await asyncio.wait_for(conn.fetchval("SELECT 1"), self._check_every_s)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        change = parse_change(payload)
        if change is None:
            return
        if not self._pending:
            # The notifications of one commit arrive together: hand them over as one burst.
            asyncio.get_running_loop().call_soon(self._deliver)
        self._pending.append(change)

    def _deliver(self) -> None:
        changes, self._pending = self._pending, []
        for consumer in self._on_changes:
            consumer(changes)


def connect_kwargs(database_url: str) -> dict[str, Any]:
    """asyncpg.connect() arguments for a SQLAlchemy `postgresql+asyncpg://` URL: the whole
    URL as a DSN, so that libpq's query parameters (`sslmode`, `sslrootcert`, `host`, ...)
    mean what they mean to the pools."""
    return {
        "dsn": asyncpg_dsn(database_url),
        # Tells operators, in pg_stat_activity, what this session is.
        "server_settings": {"application_name": "carpool-listen"},
    }


async def listener_resource(database_url: str) -> AsyncIterator[ChangeListener]:
    """Container resource: the worker's listener (connected on first use), closed at shutdown."""
    listener = ChangeListener(connect_kwargs(database_url))
    try:
        yield listener
    finally:
        await listener.close()
