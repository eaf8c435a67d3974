"""`/ws`: the app's routes multiplexed over one WebSocket, each frame on its own unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Sanic
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from carpool.compose.batch import run_batch
from carpool.compose.dispatch import as_response, capture, dispatch_subrequest
from carpool.compose.encoding import encode_item
from carpool.compose.examples import BAD_FRAME_ANSWER, CallExamples
from carpool.compose.frames import (
    BAD_FRAME,
    BadFrame,
    BatchFrame,
    BatchFrameInDescribed,
    BatchFrameOut,
    ErrorFrameOut,
    RequestFrame,
    RequestFrameIn,
    RequestFrameOut,
    TypedFrame,
    encode_answer,
    parse_frame,
)
from carpool.compose.live import LiveHub
from carpool.compose.multiplex import AsgiWebSocket, Multiplexer, Payload
from carpool.compose.subscriptions import (
    LiveSocket,
    SubscribeFrameIn,
    UnsubscribeFrameIn,
    UpdateFrameOut,
)
from carpool.observability import metrics
from carpool.settings import Settings
from carpool.web.endpoints import AUTHENTICATED, Answer, Doc, Message, endpoint
from carpool.web.errors import problem_for
from carpool.web.responses import JSON, problem_response
from carpool.web.unit_scope import UnitOfWorkFactory, unit_scope


def messages(examples: CallExamples) -> tuple[Message, ...]:
    """The frames of `/ws`, as its AsyncAPI description shows them."""
    return (
        Message(
            "request",
            "Run one route (its own unit of work)",
            RequestFrameIn,
            examples.request_frame(),
        ),
        Message(
            "batch",
            "Run a batch, as POST /batch does",
            BatchFrameInDescribed,
            examples.batch_frame(),
        ),
        Message(
            "answer",
            "The answer of a request frame",
            RequestFrameOut,
            examples.answer_frame(),
            sent=True,
        ),
        Message(
            "batchAnswer",
            "The answer of a batch frame",
            BatchFrameOut,
            examples.batch_answer_frame(),
            sent=True,
        ),
        Message(
            "subscribe",
            "Keep a GET route's answer live (docs/live.md)",
            SubscribeFrameIn,
            examples.subscribe_frame(),
        ),
        Message(
            "unsubscribe",
            "Stop a subscription",
            UnsubscribeFrameIn,
            examples.unsubscribe_frame(),
        ),
        Message(
            "update",
            "A subscription's answer: at once, then after each committed change that alters it",
            UpdateFrameOut,
            examples.update_frame(),
            sent=True,
        ),
        Message(
            "error",
            "The answer to a frame that cannot be run",
            ErrorFrameOut,
            BAD_FRAME_ANSWER,
            sent=True,
        ),
    )


def _problem_answer(frame_id: str | None, exc: Exception) -> bytes:
    problem = capture(problem_for(exc))
    return encode_answer(frame_id, problem.status, problem.body)


def _bad_frame_answer(exc: BadFrame) -> bytes:
    problem = capture(problem_response(400, exc.detail, type_=BAD_FRAME, errors=exc.errors))
    return encode_answer(exc.frame_id, problem.status, problem.body)


class FrameRunner:
    """Turns one frame into its answer, running it as the outer request would run it.

    A request frame runs on a unit of work of its own (read-only for GET, HEAD, OPTIONS),
    committed when unsafe and answered below 400, else rolled back. A batch frame runs as
    `POST /batch` does, on one unit of work for its items. A typed frame (`"type"`) goes to
    `typed` (subscriptions). Bad frames are answered 400.
    """

    def __init__(
        self,
        parent: Request,
        unit_of_work: UnitOfWorkFactory,
        settings: Settings,
        *,
        typed: TypedFrameHandler | None = None,
    ):
        self._parent = parent
        self._unit_of_work = unit_of_work
        self._settings = settings
        self._typed = typed

    async def __call__(self, payload: Payload) -> bytes | None:
        """The answer frame's text for `payload` (None: none); never raises but for cancellation."""
        with metrics.tracking(metrics.FRAMES_IN_FLIGHT):
            return await self._answer(payload)

    async def _answer(self, payload: Payload) -> bytes | None:
        try:
            if isinstance(payload, bytes):
                raise BadFrame("Send frames as text: binary frames are not read.", frame_id=None)
            frame = parse_frame(payload, max_depth=self._settings.json_max_depth)
        except BadFrame as exc:
            return _bad_frame_answer(exc)
        except Exception as exc:  # a bug: every frame still gets exactly one answer
            return _problem_answer(None, exc)
        try:
            if isinstance(frame, TypedFrame):
                return await self._typed_frame(frame)
            if isinstance(frame, BatchFrame):
                return await self._batch(frame)
            return await self._request(frame)
        except Exception as exc:  # a bug: logged by problem_for, answered 500; the socket lives
            return _problem_answer(frame.id, exc)

    async def _typed_frame(self, frame: TypedFrame) -> bytes | None:
        try:
            if self._typed is None:
                raise BadFrame(f"Unknown frame type {frame.type!r}.", frame_id=frame.id)
            return await self._typed(frame)
        except BadFrame as exc:
            return _bad_frame_answer(exc)

    async def _request(self, frame: RequestFrame) -> bytes:
        async with unit_scope(self._unit_of_work, method=frame.method) as scope:
            answer = await dispatch_subrequest(self._parent, frame.subrequest(), scope.work)
            answer = capture(await scope.finish(as_response(answer)))
        return encode_item(frame.id, answer)

    async def _batch(self, frame: BatchFrame) -> bytes:
        async with unit_scope(self._unit_of_work, method="POST") as scope:
            try:
                body = await run_batch(self._parent, frame.batch, scope.work, self._settings)
                response: BaseHTTPResponse = HTTPResponse(body, content_type=JSON)
            except Exception as exc:  # a bad envelope, a timeout: nothing kept
                response = problem_for(exc)
            answer = capture(await scope.finish(response))
        return encode_answer(frame.id, answer.status, answer.body)


TypedFrameHandler = Callable[[TypedFrame], Awaitable[bytes | None]]


def websocket_routes(settings: Settings, examples: CallExamples) -> Blueprint:
    """The `/ws` route, with the limits in `settings`, and its part in a graceful shutdown;
    its description shows `examples`."""
    blueprint = Blueprint("websocket")
    live: dict[Multiplexer, asyncio.Task[Any]] = {}

    async def multiplex(request: Request, ws: Any) -> None:
        """Answer id-tagged frames concurrently until the socket ends."""
        socket = AsgiWebSocket.of(request)
        hub: LiveHub = request.app.ctx.live
        live_socket = LiveSocket(
            hub, request, socket, max_subscriptions=settings.ws_max_subscriptions
        )
        runner = FrameRunner(
            request, request.app.ctx.container.unit_of_work, settings, typed=live_socket.handle
        )
        multiplexer = Multiplexer(
            socket,
            runner,
            max_in_flight=settings.ws_max_in_flight,
            max_frame_bytes=settings.ws_max_frame_bytes,
            grace_s=settings.ws_shutdown_grace_s,
        )
        task = asyncio.current_task()
        assert task is not None
        live[multiplexer] = task
        try:
            with metrics.tracking(metrics.SOCKETS_OPEN):
                await multiplexer.serve()
        finally:
            del live[multiplexer]
            await live_socket.close()

    endpoint(
        blueprint,
        "/ws",
        scope=AUTHENTICATED,
        composable=False,
        unit=False,
        websocket=True,
        doc=Doc(
            "multiplex",
            "Multiplex requests over one WebSocket (described by /asyncapi.json)",
            "websocket",
            answers={101: Answer("Switching to the WebSocket protocol.")},
            errors=(400,),
            messages=messages(examples),
        ),
    )(multiplex)

    @blueprint.before_server_stop
    async def close_sockets(app: Sanic[Any, Any]) -> None:
        """Let every socket finish (or roll back) its frames and close with 1001, before the
        database goes away."""
        for multiplexer in list(live):
            multiplexer.stop()
        if live:
            await asyncio.wait(set(live.values()), timeout=settings.ws_shutdown_grace_s + 1.0)
        await app.ctx.live.close(grace_s=settings.ws_shutdown_grace_s)

    return blueprint
