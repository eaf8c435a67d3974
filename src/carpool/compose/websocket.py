"""`/ws`: the app's routes multiplexed over one WebSocket, each frame on its own unit of work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Sanic
from sanic.request import Request

from carpool.compose.batch import run_batch
from carpool.compose.dispatch import capture, dispatch_subrequest
from carpool.compose.encoding import encode_item
from carpool.compose.envelope import SAFE_METHODS
from carpool.compose.frames import (
    BAD_FRAME,
    BadFrame,
    BatchFrame,
    RequestFrame,
    encode_answer,
    parse_frame,
)
from carpool.compose.multiplex import AsgiWebSocket, Multiplexer, Payload
from carpool.data.unit_of_work import UnitOfWork
from carpool.settings import Settings
from carpool.web.errors import problem_for
from carpool.web.responses import problem_response

UnitOfWorkFactory = Callable[..., Awaitable[UnitOfWork]]


async def finalise(uow: UnitOfWork, *, commit: bool) -> None:
    """Commit or roll back `uow` and release its connection, even if cancelled meanwhile.

    A refused COMMIT raises CommitFailed (nothing was saved).
    """
    finishing = asyncio.ensure_future(uow.finish(commit=commit))
    try:
        await asyncio.shield(finishing)
    except asyncio.CancelledError:
        # Let the commit or rollback complete: a half-finished unit would hold its connection.
        with contextlib.suppress(Exception):
            await finishing
        raise


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
    `POST /batch` does, on one unit of work for its items. Bad frames are answered 400.
    """

    def __init__(self, parent: Request, unit_of_work: UnitOfWorkFactory, settings: Settings):
        self._parent = parent
        self._unit_of_work = unit_of_work
        self._settings = settings

    async def __call__(self, payload: Payload) -> bytes:
        """The answer frame's text for `payload`: never raises but for cancellation."""
        try:
            if isinstance(payload, bytes):
                raise BadFrame("Send frames as text: binary frames are not read.", frame_id=None)
            frame = parse_frame(payload)
        except BadFrame as exc:
            return _bad_frame_answer(exc)
        try:
            if isinstance(frame, BatchFrame):
                return await self._batch(frame)
            return await self._request(frame)
        except Exception as exc:  # a bug: logged by problem_for, answered 500; the socket lives
            return _problem_answer(frame.id, exc)

    async def _request(self, frame: RequestFrame) -> bytes:
        uow = await self._unit_of_work(read_only=frame.method in SAFE_METHODS)
        try:
            answer = await dispatch_subrequest(self._parent, frame.subrequest(), uow)
        except BaseException:
            await finalise(uow, commit=False)
            raise
        try:
            await finalise(uow, commit=not uow.read_only and answer.status < 400)
        except Exception as exc:  # a refused COMMIT: nothing was saved, and the answer says so
            answer = capture(problem_for(exc))
        answer.headers["server-timing"] = uow.stats.server_timing()
        return encode_item(frame.id, answer)

    async def _batch(self, frame: BatchFrame) -> bytes:
        uow = await self._unit_of_work(read_only=False)
        try:
            body = await run_batch(self._parent, frame.batch, uow, self._settings)
        except Exception as exc:  # a bad envelope, a timeout, a refused COMMIT: nothing kept
            await finalise(uow, commit=False)
            return _problem_answer(frame.id, exc)
        except BaseException:
            await finalise(uow, commit=False)
            raise
        return encode_answer(frame.id, 200, body)


def websocket_routes(settings: Settings) -> Blueprint:
    """The `/ws` route, with the limits in `settings`, and its part in a graceful shutdown."""
    blueprint = Blueprint("websocket")
    live: dict[Multiplexer, asyncio.Task[Any]] = {}

    async def multiplex(request: Request, ws: Any) -> None:
        """Answer id-tagged frames concurrently until the socket ends."""
        runner = FrameRunner(request, request.app.ctx.container.unit_of_work, settings)
        socket = AsgiWebSocket.of(request)
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
            await multiplexer.serve()
        finally:
            del live[multiplexer]

    blueprint.add_websocket_route(multiplex, "/ws")

    @blueprint.before_server_stop
    async def close_sockets(app: Sanic[Any, Any]) -> None:
        """Let every socket finish (or roll back) its frames and close with 1001, before the
        database goes away."""
        for multiplexer in list(live):
            multiplexer.stop()
        if live:
            await asyncio.wait(set(live.values()), timeout=settings.ws_shutdown_grace_s + 1.0)

    return blueprint
