"""`/ws`: the app's routes multiplexed over one WebSocket, each frame on its own unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Sanic
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from carpool.auth.identity import Identity
from carpool.compose.batch import run_batch
from carpool.compose.dispatch import SubResponse, capture, dispatch_subrequest
from carpool.compose.encoding import encode_item
from carpool.compose.examples import BAD_FRAME_ANSWER, CallExamples
from carpool.compose.frames import (
    BAD_FRAME,
    AuthFrame,
    AuthFrameIn,
    AuthFrameOut,
    BadFrame,
    BatchFrame,
    BatchFrameInDescribed,
    BatchFrameOut,
    ErrorFrameOut,
    RequestFrame,
    RequestFrameIn,
    RequestFrameOut,
    TypedFrame,
    auth_frame,
    encode_answer,
    parse_frame,
)
from carpool.compose.live import LiveHub
from carpool.compose.lookup_rounds import LookupRounds
from carpool.compose.multiplex import AsgiWebSocket, Multiplexer, Payload
from carpool.compose.outbound import SendBudget
from carpool.compose.subscriptions import (
    LiveSocket,
    SubscribeFrameIn,
    UnsubscribeFrameIn,
    UpdateFrameOut,
)
from carpool.observability import logs, metrics
from carpool.settings import Settings
from carpool.web.access import FORBIDDEN, identity_of, refusal
from carpool.web.endpoints import AUTHENTICATED, Answer, Doc, Message, endpoint
from carpool.web.errors import problem_for
from carpool.web.front_door import TOO_MANY_SOCKETS, CallerSockets
from carpool.web.responses import JSON, dumps, problem_response
from carpool.web.unit_scope import SAFE_METHODS, SERVER_TIMING, UnitOfWorkFactory, unit_scope


def messages(examples: CallExamples) -> tuple[Message, ...]:
    """The frames of `/ws`, as its AsyncAPI description shows them."""
    return (
        Message(
            "auth",
            "Identify the socket's caller, or renew an expiring token",
            AuthFrameIn,
            {"type": "auth", "id": "a", "token": "eyJhbGciOiJIUzI1NiJ9.e30.signature"},
            replies=("authAnswer", "error"),
        ),
        Message(
            "authAnswer",
            "The answer of an auth frame",
            AuthFrameOut,
            {
                "type": "auth",
                "id": "a",
                "status": 200,
                "body": {"sub": "alice", "scope": "catalog:read", "exp": 1796730516},
            },
            sent=True,
        ),
        Message(
            "request",
            "Run one route (its own unit of work)",
            RequestFrameIn,
            examples.request_frame(),
            replies=("answer", "error"),
        ),
        Message(
            "batch",
            "Run a batch, as POST /batch does",
            BatchFrameInDescribed,
            examples.batch_frame(),
            replies=("batchAnswer", "error"),
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
            replies=("update", "error"),
        ),
        Message(
            "unsubscribe",
            "Stop a subscription",
            UnsubscribeFrameIn,
            examples.unsubscribe_frame(),
            replies=("update", "error"),
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


def _typed_answer(kind: str, frame_id: str | None, status: int, body: bytes) -> bytes:
    """`{"type", "id", "status", "body"}`, the answer to a typed frame."""
    return b'{"type":' + dumps(kind) + b"," + encode_answer(frame_id, status, body)[1:]


# A batch frame's answer carries the headers a client acts on: when to retry, what budget is left.
_BATCH_FRAME_HEADERS = ("retry-after", "ratelimit", "ratelimit-policy")


def _batch_answer(frame_id: str, answer: SubResponse) -> bytes:
    """`{"id", "status", "body"}`, with `"headers"` when the answer has any a client acts on
    (`Retry-After` of a 429 or 503, the RateLimit budget)."""
    headers = {
        name: answer.headers[name] for name in _BATCH_FRAME_HEADERS if name in answer.headers
    }
    if not headers:
        return encode_answer(frame_id, answer.status, answer.body)
    return encode_item(frame_id, SubResponse(answer.status, headers, answer.body, JSON))


def _bad_frame_answer(exc: BadFrame) -> bytes:
    problem = capture(problem_response(400, exc.detail, type_=BAD_FRAME, errors=exc.errors))
    return encode_answer(exc.frame_id, problem.status, problem.body)


class FrameRunner:
    """Turns one frame into its answer, running it as the outer request would run it.

    A request frame runs on a unit of work of its own (read-only for GET, HEAD, OPTIONS),
    committed when unsafe and answered below 400, else rolled back. A batch frame runs as
    `POST /batch` does, on one unit of work for its items. A typed frame (`"type"`) goes to
    `typed` (subscriptions). Bad frames are answered 400.

    The socket's caller is `parent.ctx.identity` (from the handshake's `Authorization`), which
    an auth frame (`"type": "auth"`) sets or replaces; each frame runs as that caller, checked
    like a single call.
    """

    def __init__(
        self,
        parent: Request,
        unit_of_work: UnitOfWorkFactory,
        settings: Settings,
        *,
        typed: TypedFrameHandler | None = None,
        sockets: CallerSockets | None = None,
        lookups: LookupRounds | None = None,
    ):
        self._parent = parent
        self._lookups = lookups
        self._unit_of_work = unit_of_work
        self._settings = settings
        self._typed = typed
        self._sockets = sockets
        self.counted_sub: str | None = None
        """The caller an auth frame identified and counted among their open sockets."""

    async def __call__(self, payload: Payload) -> bytes | None:
        """The answer frame's text for `payload` (None: none); never raises but for cancellation."""
        in_flight = metrics.FRAMES_IN_FLIGHT  # not `metrics.tracking`: a generator per frame
        in_flight.inc()
        try:
            return await self._answer(payload)
        finally:
            in_flight.dec()

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
            if frame.type == "auth":
                return await self._auth(auth_frame(frame))
            if self._typed is None:
                raise BadFrame(f"Unknown frame type {frame.type!r}.", frame_id=frame.id)
            return await self._typed(frame)
        except BadFrame as exc:
            return _bad_frame_answer(exc)

    async def _auth(self, frame: AuthFrame) -> bytes:
        identifier = self._parent.app.ctx.identifier
        new: Identity = await identifier.identify(f"Bearer {frame.token}")
        problem = refusal(new, AUTHENTICATED) or self._admit(await identity_of(self._parent), new)
        if problem is not None:
            answer = capture(problem)
            return _typed_answer("auth", frame.id, answer.status, answer.body)
        self._parent.ctx.identity = new
        accepted = {"sub": new.sub, "scope": " ".join(sorted(new.scopes)), "exp": new.expires_at}
        return _typed_answer("auth", frame.id, 200, dumps(accepted))

    def _admit(self, current: Identity, new: Identity) -> BaseHTTPResponse | None:
        """None if `new` (valid) may become the socket's caller: the same caller renewing a
        token, or a first caller with room for one more socket (then counted)."""
        if current.authenticated:
            if new.sub == current.sub:
                return None
            detail = "A socket's caller cannot change; open another socket for another caller."
            return problem_response(403, detail, type_=FORBIDDEN)
        assert new.sub is not None
        if self._sockets is not None:
            if not self._sockets.enter(new.sub):
                detail = f"This caller has {self._sockets.limit} sockets open already."
                return problem_response(429, detail, type_=TOO_MANY_SOCKETS)
            self.counted_sub = new.sub
        return None

    async def _request(self, frame: RequestFrame) -> bytes:
        timing = self._settings.server_timing
        method = frame.method
        journal = logs.journal_for(self._parent, each=False)
        async with unit_scope(self._unit_of_work, method=method, server_timing=timing) as scope:
            if self._lookups is not None and method in SAFE_METHODS:
                scope.work.share_lookups(self._lookups)  # docs/websocket.md, "Lookup rounds"
            answer = await dispatch_subrequest(
                self._parent, frame.subrequest(), scope.work, journal=journal
            )
            refused = await scope.end(answer.status)
            if refused is not None:
                answer = capture(refused)
            server_timing = scope.timing()
            if server_timing is not None:
                answer.headers[SERVER_TIMING] = server_timing
            if journal is not None:
                logs.log_frame(self._parent, journal, answer.status, scope.started, scope.work)
        return encode_item(frame.id, answer)

    async def _batch(self, frame: BatchFrame) -> bytes:
        refused = refusal(await identity_of(self._parent), AUTHENTICATED)  # as POST /batch
        if refused is not None:
            answer = capture(refused)
            return encode_answer(frame.id, answer.status, answer.body)
        timing = self._settings.server_timing
        journal = logs.journal_for(self._parent)
        async with unit_scope(self._unit_of_work, method="POST", server_timing=timing) as scope:
            try:
                body, headers = await run_batch(
                    self._parent, frame.batch, scope.work, self._settings, journal=journal
                )
                response: BaseHTTPResponse = HTTPResponse(body, content_type=JSON, headers=headers)
            except Exception as exc:  # a bad envelope, a timeout, no budget: nothing kept
                response = problem_for(exc)
            answer = capture(await scope.finish(response))
            if journal is not None:
                logs.log_frame(
                    self._parent, journal, answer.status, scope.started, scope.work, batch=True
                )
        return _batch_answer(frame.id, answer)


TypedFrameHandler = Callable[[TypedFrame], Awaitable[bytes | None]]
# A socket that has not said who its caller is in time (RFC 6455 leaves 4000-4999 to apps).
NO_CALLER_IN_TIME = 4401


def _identified_or_closed(request: Request, multiplexer: Multiplexer) -> None:
    """WS_AUTH_TIMEOUT_S after the handshake: close a socket that has no caller yet (4401)."""
    identity: Identity | None = request.ctx.identity
    if identity is None or not identity.authenticated:
        multiplexer.stop(NO_CALLER_IN_TIME, "no auth frame within WS_AUTH_TIMEOUT_S")


def websocket_routes(settings: Settings, examples: CallExamples) -> Blueprint:
    """The `/ws` route, with the limits in `settings`, and its part in a graceful shutdown;
    its description shows `examples`."""
    blueprint = Blueprint("websocket")
    live: dict[Multiplexer, asyncio.Task[Any]] = {}

    async def multiplex(request: Request, ws: Any) -> None:
        """Answer id-tagged frames concurrently until the socket ends."""
        socket = AsgiWebSocket.of(request)
        socket.send_timeout_s = settings.ws_send_timeout_s
        budget = SendBudget(settings.ws_max_pending_bytes)
        hub: LiveHub = request.app.ctx.live
        live_socket = LiveSocket(
            hub,
            request,
            socket,
            max_subscriptions=settings.ws_max_subscriptions,
            budget=budget,
        )
        # The handshake's caller, until an auth frame says otherwise.
        handshake_identity = await identity_of(request)
        sockets: CallerSockets = request.app.ctx.caller_sockets
        units = request.app.ctx.container.unit_of_work
        lookups = LookupRounds(units)
        runner = FrameRunner(
            request, units, settings, typed=live_socket.handle, sockets=sockets, lookups=lookups
        )
        multiplexer = Multiplexer(
            socket,
            runner,
            max_in_flight=settings.ws_max_in_flight,
            max_frame_bytes=settings.ws_max_frame_bytes,
            grace_s=settings.ws_shutdown_grace_s,
            budget=budget,
        )
        task = asyncio.current_task()
        assert task is not None
        live[multiplexer] = task
        deadline = None
        if not handshake_identity.authenticated and not handshake_identity.scopes:
            deadline = asyncio.get_running_loop().call_later(
                settings.ws_auth_timeout_s, _identified_or_closed, request, multiplexer
            )
        try:
            with metrics.tracking(metrics.SOCKETS_OPEN):
                await multiplexer.serve()
        finally:
            if deadline is not None:
                deadline.cancel()
            del live[multiplexer]
            await lookups.close()
            await live_socket.close()
            if runner.counted_sub is not None:
                sockets.leave(runner.counted_sub)

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
