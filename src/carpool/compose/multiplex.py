"""One WebSocket, many concurrent frames: the ASGI socket and the loop that reads and answers it.

This module knows messages, not what they mean: `Multiplexer` is handed a function that turns
one incoming message into the text of its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sanic.models.asgi import MockTransport
from sanic.request import Request

from carpool.compose.outbound import SendBudget

Message = MutableMapping[str, Any]
Payload = str | bytes  # a text frame arrives as str, a binary one as bytes
Answer = Callable[[Payload], Awaitable[bytes | None]]  # None: nothing to answer

GOING_AWAY = 1001
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013


class SocketClosed(Exception):
    """Nothing can be sent: the peer has gone, or the socket was closed."""


class AsgiWebSocket:
    """An accepted WebSocket, spoken to in ASGI messages.

    Sanic's ASGI shim (`sanic.server.websockets.connection.WebSocketConnection`) cannot close
    with a code (its `close()` does nothing) and hides why a socket ended (`recv()` returns
    None); this reads and writes the ASGI messages itself, through the request's transport.
    """

    def __init__(
        self, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        self._receive = receive
        self._send = send
        self._sending = asyncio.Lock()
        self.closed = False
        self.close_code: int | None = None
        self.send_timeout_s: float | None = None
        """How long one send may wait for the peer to read; past it the socket is given up."""
        self.on_stalled: Callable[[], None] | None = None
        self.stalled = False

    @classmethod
    def of(cls, request: Request) -> AsgiWebSocket:
        """The socket of a WebSocket request served by an ASGI server (as carpool always is)."""
        transport = request.transport
        if not isinstance(transport, MockTransport):
            raise RuntimeError("carpool serves WebSockets only under an ASGI server (uvicorn)")
        return cls(transport.receive, transport.send)

    async def receive(self) -> Payload | None:
        """The next message, text (str) or binary (bytes); None once the socket has ended."""
        while not self.closed:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text: str | None = message.get("text")
                return text if text is not None else bytes(message.get("bytes") or b"")
            if kind == "websocket.disconnect":
                self.closed = True
                self.close_code = int(message.get("code", 1005))
            # "websocket.connect" (if the handshake left it unread) says nothing new.
        return None

    async def send_text(self, data: bytes) -> None:
        """Send `data` (UTF-8 JSON) as one text frame; SocketClosed if it cannot go."""
        await self._post({"type": "websocket.send", "text": data.decode()})

    async def close(self, code: int, reason: str = "") -> None:
        """Send a close frame with `code`; nothing more can be sent afterwards."""
        if not self.closed:
            await self._post({"type": "websocket.close", "code": code, "reason": reason})
            self.closed = True
            self.close_code = code

    async def _post(self, message: Message) -> None:
        # ASGI servers need not accept concurrent sends; frames finish concurrently.
        async with self._sending:
            if self.closed:
                raise SocketClosed("the socket is closed")
            try:
                # The server's send waits while its write buffer is full (a peer that does not
                # read): bounded, so that such a peer cannot hold the socket's answers forever.
                async with asyncio.timeout(self.send_timeout_s):
                    await self._send(message)
            except TimeoutError:
                self._stall()
                raise SocketClosed("the peer does not read") from None
            except Exception as exc:  # uvicorn: ClientDisconnected (an OSError), RuntimeError
                self.closed = True
                raise SocketClosed("the peer has gone") from exc

    def _stall(self) -> None:
        self.closed = self.stalled = True
        self.close_code = TRY_AGAIN_LATER
        if self.on_stalled is not None:
            self.on_stalled()


def payload_size(payload: Payload) -> int:
    """The size of a message in bytes (UTF-8 for text)."""
    if isinstance(payload, bytes):
        return len(payload)
    return len(payload.encode()) if not payload.isascii() else len(payload)


class Multiplexer:
    """Runs one socket's frames concurrently, at most `max_in_flight` at a time, each answered once.

    At the limit it stops reading (backpressure: it holds at most one frame it cannot start
    yet) until a frame finishes; nothing is dropped or refused. It ends when the peer leaves
    (frames still running are cancelled, so their work is rolled back), on a frame larger
    than `max_frame_bytes` (close 1009) or when cancelled, as on server shutdown (close 1001).
    Before those two closes, running frames get `grace_s` seconds to finish and answer.

    With a `budget`, each answer counts against it until sent, and no new frame starts while
    the socket's unsent bytes are past it; a peer that stops reading (one send waiting past
    the socket's `send_timeout_s`) ends the socket, its frames cancelled.
    """

    def __init__(
        self,
        socket: AsgiWebSocket,
        answer: Answer,
        *,
        max_in_flight: int,
        max_frame_bytes: int,
        grace_s: float,
        budget: SendBudget | None = None,
    ) -> None:
        self._socket = socket
        self._budget = budget
        socket.on_stalled = self.stop  # a peer that does not read: wind the socket down
        self._answer = answer
        self._max_in_flight = max_in_flight
        self._max_frame_bytes = max_frame_bytes
        self._grace_s = grace_s
        self._running: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[Any] | None = None
        self._stopping = False
        self._stop_with: tuple[int, str] = (GOING_AWAY, "the server is shutting down")

    async def serve(self) -> None:
        """Read and answer frames until the socket ends; every frame is over when this returns."""
        self._task = asyncio.current_task()
        try:
            try:
                close_code = await self._read_frames()
            except asyncio.CancelledError:
                # The server is stopping: wind down gracefully instead of dying mid-frame.
                self._stopping = True
                if self._task is not None:
                    self._task.uncancel()
                close_code = self._stop_with[0]
            if close_code is not None:
                await self._close(close_code)
        finally:
            await self._abandon()

    def stop(self, code: int = GOING_AWAY, reason: str = "the server is shutting down") -> None:
        """Ask `serve` to stop reading, let running frames finish, and close with `code`
        (default 1001, going away)."""
        task = self._task
        if task is not None and not self._stopping and not task.cancelling() and not task.done():
            self._stop_with = (code, reason)
            task.cancel()

    async def _read_frames(self) -> int | None:
        """Start a task per frame; the close code to end with, or None once the peer has gone."""
        while True:
            payload = await self._next_payload()
            if payload is None or self._socket.closed:
                return None
            if payload_size(payload) > self._max_frame_bytes:
                return MESSAGE_TOO_BIG
            task = asyncio.create_task(self._run(payload))
            self._running.add(task)
            task.add_done_callback(self._finished)
            if len(self._running) >= self._max_in_flight:
                self._room.clear()

    async def _next_payload(self) -> Payload | None:
        """The next message, once there is room to run it.

        Read first, then wait for room: at the limit, the read goes on (so that a peer leaving
        is noticed at once, and its running frames cancelled), and a frame that arrives is held
        until one finishes, the one frame read ahead. The same as a read in a task of its own
        beside the wait, without that task and its wake-up per frame (a client that keeps the
        limit in flight, as the benchmark does, is at the limit for every frame).
        """
        payload = await self._socket.receive()
        while payload is not None and not self._room.is_set():
            await self._room.wait()
        budget = self._budget
        if budget is not None and budget.over:  # the peer reads slower than it asks
            await budget.room()
        return payload

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if len(self._running) < self._max_in_flight:
            self._room.set()

    async def _run(self, payload: Payload) -> None:
        try:
            answer = await self._answer(payload)
            if answer is not None:
                budget = self._budget
                if budget is None:
                    await self._socket.send_text(answer)
                    return
                budget.take(len(answer))
                try:
                    await self._socket.send_text(answer)
                finally:
                    budget.give(len(answer))
        except SocketClosed:
            pass  # the peer has gone: the frame's work is finalised and nobody is listening

    async def _close(self, code: int) -> None:
        if self._running:
            await asyncio.wait(set(self._running), timeout=self._grace_s)
        await self._abandon()
        reason = "the frame is too big" if code == MESSAGE_TOO_BIG else self._stop_with[1]
        try:
            await self._socket.close(code, reason)
        except SocketClosed:
            pass

    async def _abandon(self) -> None:
        """Cancel the frames still running and wait until each has finalised its work."""
        running = set(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
