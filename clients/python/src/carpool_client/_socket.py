"""The socket link: calls as frames on one WebSocket, correlated by id, kept connected.

One supervisor task owns the connection: it connects (with the token in the handshake),
resubscribes every live subscription (with the `etag` it last had, so only what changed
meanwhile is sent), renews a callable token with `auth` frames before it expires, reads
every answer and hands it to its caller by id, and on a dropped socket fails the frames in
flight (their callers send them again) and reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from carpool_client._calls import Call, RetryPolicy, TokenSource, dumps, refresh_delay, token_of
from carpool_client._response import ConnectionLost, ProblemError, Response, Update
from carpool_client._spans import body_bytes, members

_Answer = tuple[dict[str, Any], str]
_REFUSED_AT_HANDSHAKE = frozenset({400, 401, 403, 404})
UNSUBSCRIBE_TIMEOUT_S = 5.0


@dataclass
class LiveState:
    """One subscription as the link keeps it: its path, its unread updates, its last etag."""

    path: str
    updates: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)
    etag: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, frame: Mapping[str, Any], text: str) -> None:
        headers = frame.get("headers") or {}
        update = Update(
            int(frame["status"]),
            headers,
            body_bytes(text, members(text, 0).get("body")),
            self.path,
            bool(frame.get("ended", False)),
        )
        self.etag = headers.get("etag", self.etag)
        if update.ended:
            self.ended.set()
        self.updates.put_nowait(update)


class SocketLink:
    """Frames over one socket to `url`; see the module docstring."""

    def __init__(
        self,
        url: str,
        token: TokenSource,
        retry: RetryPolicy,
        *,
        reconnect_max_s: float = 5.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        self._url = url
        self._token = token
        self._retry = retry
        self._reconnect_max_s = reconnect_max_s
        self._open_timeout_s = open_timeout_s
        self._connection: ClientConnection | None = None
        self._changed = asyncio.Event()
        self._pending: dict[str, asyncio.Future[_Answer]] = {}
        self._live: dict[str, LiveState] = {}
        self._ids = itertools.count(1)
        self._supervisor: asyncio.Task[None] | None = None
        self._failure: Exception | None = None
        self.connections = 0
        """How many times the socket has been (re)connected."""

    @property
    def subscriptions(self) -> int:
        """Subscriptions live on this link now."""
        return len(self._live)

    # -- calls ---------------------------------------------------------------------------

    async def send(self, call: Call) -> Response:
        """`call` as a request frame; sent again after a lost socket or a retryable status."""
        attempt = 0
        while True:
            try:
                frame, text = await self.exchange(call.item())
            except ConnectionLost:
                if attempt >= self._retry.attempts:
                    raise
                await self._retry.wait(attempt)
                attempt += 1
                continue
            headers = frame.get("headers") or {}
            content = body_bytes(text, members(text, 0).get("body"))
            response = Response(int(frame["status"]), headers, content, call.method, call.path)
            if response.status not in self._retry.statuses or attempt >= self._retry.attempts:
                return response
            await self._retry.wait(attempt, headers.get("retry-after"))
            attempt += 1

    async def send_batch(self, envelope: Mapping[str, Any]) -> tuple[int, str]:
        """A batch frame's status and its body's JSON text (never sent twice: it may write)."""
        frame, text = await self.exchange({"batch": envelope})
        start, end = members(text, 0)["body"]
        return int(frame["status"]), text[start:end]

    async def exchange(self, frame: Mapping[str, Any], prefix: str = "c") -> _Answer:
        """Send `frame` with an id of its own; its answer (parsed, and as text). Raises
        ConnectionLost if no socket opens within the open timeout."""
        try:
            async with asyncio.timeout(self._open_timeout_s):
                connection = await self._socket()
        except TimeoutError as exc:
            raise ConnectionLost(f"no socket to {self._url} opened in time") from exc
        frame_id = f"{prefix}{next(self._ids)}"
        answer: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = answer
        try:
            try:
                await connection.send(dumps({"id": frame_id, **frame}))
            except ConnectionClosed as exc:
                raise ConnectionLost("the socket closed before the frame was sent") from exc
            return await answer
        finally:
            self._pending.pop(frame_id, None)

    # -- subscriptions -------------------------------------------------------------------

    async def subscribe(self, path: str) -> tuple[str, LiveState]:
        """Start following `path`; its id and state (updates arrive on `state.updates`)."""
        connection = await self._socket()
        live_id = f"s{next(self._ids)}"
        state = self._live[live_id] = LiveState(path)
        with contextlib.suppress(ConnectionClosed):  # the reconnection will resubscribe it
            await connection.send(dumps({"type": "subscribe", "id": live_id, "path": path}))
        return live_id, state

    async def unsubscribe(self, live_id: str) -> None:
        """Stop following: the server is told (and its last frame awaited) if it is live."""
        state = self._live.get(live_id)
        if state is None:
            return
        connection = self._connection
        if connection is not None and not state.ended.is_set():
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await connection.send(dumps({"type": "unsubscribe", "id": live_id}))
                async with asyncio.timeout(UNSUBSCRIBE_TIMEOUT_S):
                    await state.ended.wait()
        self._live.pop(live_id, None)

    # -- the connection ------------------------------------------------------------------

    async def _socket(self) -> ClientConnection:
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        while True:
            if self._failure is not None:
                raise self._failure
            if self._connection is not None:
                return self._connection
            self._changed.clear()
            await self._changed.wait()

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            try:
                connection, token = await self._open()
            except InvalidStatus as exc:
                if exc.response.status_code in _REFUSED_AT_HANDSHAKE:
                    self._fail(ProblemError(_handshake_answer(exc, self._url)))
                    return
            except (OSError, TimeoutError, WebSocketException):
                pass
            else:
                attempt = 0
                await self._serve(connection, token)
                continue
            await asyncio.sleep(min(0.1 * 2**attempt, self._reconnect_max_s))
            attempt += 1

    async def _open(self) -> tuple[ClientConnection, str | None]:
        token = await token_of(self._token)
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        connection = await connect(
            self._url,
            additional_headers=headers,
            compression=None,  # small JSON frames: compression costs both ends more than it saves
            open_timeout=self._open_timeout_s,
            max_size=None,
        )
        return connection, token

    async def _serve(self, connection: ClientConnection, token: str | None) -> None:
        renewing = asyncio.get_running_loop().create_task(self._renew(token))
        try:
            for live_id, state in list(self._live.items()):
                if state.ended.is_set():
                    continue
                frame: dict[str, Any] = {"type": "subscribe", "id": live_id, "path": state.path}
                if state.etag is not None:
                    frame["if_none_match"] = state.etag
                await connection.send(dumps(frame))
            self.connections += 1
            self._connection = connection
            self._changed.set()
            async for text in connection:
                self._dispatch(str(text))
        except ConnectionClosed:
            pass
        finally:
            self._connection = None
            renewing.cancel()
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(ConnectionLost("the socket closed before the answer"))
            await connection.close()

    def _dispatch(self, text: str) -> None:
        frame = json.loads(text)
        frame_id = frame.get("id")
        if frame.get("type") == "update":
            state = self._live.get(frame_id)
            if state is not None:
                state.push(frame, text)
            return
        answer = self._pending.get(frame_id)
        if answer is not None and not answer.done():
            answer.set_result((frame, text))

    async def _renew(self, token: str | None) -> None:
        """Send a fresh token in an `auth` frame before the current one expires."""
        if callable(self._token) and token is not None:
            while (delay := refresh_delay(token)) is not None:
                await asyncio.sleep(delay)
                token = await token_of(self._token)
                if token is None:
                    return
                with contextlib.suppress(ConnectionLost):
                    await self.exchange({"type": "auth", "token": token}, prefix="a")

    def _fail(self, failure: ProblemError) -> None:
        self._failure = failure
        self._changed.set()
        answer = failure.response
        for state in self._live.values():  # each subscription ends with the refusal
            state.ended.set()
            state.updates.put_nowait(
                Update(answer.status, answer.headers, answer.content, state.path, ended=True)
            )

    async def close(self) -> None:
        """Close the socket and stop reconnecting."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._connection is not None:
            await self._connection.close()


def _handshake_answer(exc: InvalidStatus, url: str) -> Response:
    answer = exc.response
    headers = {name.lower(): value for name, value in answer.headers.raw_items()}
    return Response(answer.status_code, headers, bytes(answer.body or b""), "GET", url)
