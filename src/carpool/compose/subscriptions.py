"""Live answers, socket side: `subscribe` and `unsubscribe` frames, and `update` frames out.

`{"type": "subscribe", "id", "path", "if_none_match"?}` answers at once with the GET's current
answer, then pushes `{"type": "update", "id", "status", "headers", "body"}` whenever a committed
change makes that answer different. An update with `"ended": true` is the last one of its id
(after `unsubscribe`, a refused subscription, or a caller no longer allowed to read it).

A slow client gets the latest answer, not a backlog: the socket keeps at most one unsent
update per subscription, replaced by each newer one, and together they count against the
socket's budget of unsent bytes (`outbound.py`): an update that does not fit ends its
subscription with a 503 `slow-reader` update. Each update is encoded as it is sent, so
subscriptions that share a run share its answer's bytes until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sanic.request import Request

from carpool.compose.dispatch import SubResponse, capture
from carpool.compose.encoding import encode_item
from carpool.compose.frames import BadFrame, FrameId, TypedFrame
from carpool.compose.live import LiveHub, Subscription
from carpool.compose.live_retry import transient
from carpool.compose.multiplex import AsgiWebSocket, SocketClosed
from carpool.compose.outbound import SendBudget
from carpool.web.conditional import etag_of
from carpool.web.inputs import field_errors
from carpool.web.responses import problem_response

PROBLEM = "urn:carpool:problem:"
# Answers that say the caller may no longer read the route (or, 429, not now): they end the
# subscription. Scopes and budgets are checked where every call's are (`call_endpoint`).
_NOT_ALLOWED = frozenset({401, 403, 429})


class SubscribeFrameIn(BaseModel):
    """Keep a GET route's answer live: answered at once, pushed again after each change."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["subscribe"]
    id: FrameId
    path: Annotated[str, StringConstraints(min_length=1, max_length=8192)] = Field(
        description="The path and query of a GET route, starting with /."
    )
    if_none_match: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="The etag of an earlier update: no first answer if it matches."
    )


class UpdateFrameOut(BaseModel):
    """A subscription's answer: at once, then after every committed change that alters it."""

    type: Literal["update"]
    id: str
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(description="The route's own headers, with an etag.")
    body: Any = Field(description="The GET's JSON body, byte for byte, or null.")
    ended: bool | None = Field(
        default=None, description="true on a subscription's last update (nothing follows)."
    )


class UnsubscribeFrameIn(BaseModel):
    """Stop a subscription: answered by its last update (204, `ended`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["unsubscribe"]
    id: FrameId


def encode_update(sub_id: str, answer: SubResponse, *, ended: bool = False) -> bytes:
    """`{"type": "update", "id", "status", "headers", "body"[, "ended": true]}`, body spliced."""
    item = encode_item(sub_id, answer)
    frame = b'{"type":"update",' + item[1:]
    return frame[:-1] + b',"ended":true}' if ended else frame


def _problem(status: int, slug: str, detail: str) -> SubResponse:
    return capture(problem_response(status, detail, type_=PROBLEM + slug))


def _bare(tag: str | None) -> str | None:
    return tag.removeprefix("W/") if tag is not None else None


_FRAME_BYTES = 200  # an update's frame around its body: id, status, headers


class _Unsent:
    """An update waiting to be sent: encoded when it goes (its answer may be shared)."""

    __slots__ = ("answer", "ended")

    def __init__(self, answer: SubResponse, *, ended: bool) -> None:
        self.answer = answer
        self.ended = ended


class LiveSocket:
    """The subscriptions of one socket (at most `max_subscriptions`) and their unsent updates,
    within `budget` (unsent bytes of the whole socket)."""

    def __init__(
        self,
        hub: LiveHub,
        parent: Request,
        socket: AsgiWebSocket,
        *,
        max_subscriptions: int,
        budget: SendBudget | None = None,
    ) -> None:
        self._hub = hub
        self._parent = parent
        self._socket = socket
        self._max = max_subscriptions
        self._budget = budget or SendBudget(1 << 62)
        self._subs: dict[str, Subscription] = {}
        self._outbox: dict[str, _Unsent] = {}  # one unsent update per id: the latest
        # The bodies unsent updates hold, each counted once however many share it (a run
        # shared by identical subscriptions): id -> [the body, how many hold it].
        self._held: dict[int, list[Any]] = {}
        self._ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    async def handle(self, frame: TypedFrame) -> bytes | None:
        """Run a typed frame; what to answer at once (updates go out through the outbox)."""
        try:
            if frame.type == "subscribe":
                return await self._subscribe(SubscribeFrameIn.model_validate(frame.data))
            if frame.type == "unsubscribe":
                return self._unsubscribe(UnsubscribeFrameIn.model_validate(frame.data))
        except ValidationError as exc:
            errors = tuple(field_errors(exc))
            raise BadFrame("The frame is invalid.", frame_id=frame.id, errors=errors) from None
        raise BadFrame(f"Unknown frame type {frame.type!r}.", frame_id=frame.id)

    def answered(self, sub: Subscription, answer: SubResponse) -> None:
        """A run's answer: queued if it differs from the last one sent; may end the subscription."""
        first = sub.digest is None
        if not first and answer.status >= 500 and not transient(answer.status):
            return  # a bug on a re-run: the last answer stands (passing failures are the
            # hub's to retry; it hands one over only to tell the client it lasts)
        etag = answer.headers.get("etag")
        if etag is None:  # once per answer, however many subscriptions share it
            etag = answer.headers["etag"] = etag_of(answer.body)
        digest = hashlib.blake2b(str(answer.status).encode() + etag.encode()).digest()
        if digest == sub.digest:
            return
        sub.digest = digest
        ending = answer.status in _NOT_ALLOWED or (first and _cannot_change(sub, answer))
        if ending:
            self._end(sub)
        elif first and answer.status == 200 and _bare(sub.if_none_match) == _bare(etag):
            return  # the client has this answer already
        self._queue(sub, answer, ended=ending)

    async def close(self) -> None:
        """The socket has ended: drop its subscriptions and unsent updates."""
        for sub in self._subs.values():
            self._hub.release(sub)
        self._subs.clear()
        for unsent in self._outbox.values():
            self._release(unsent)
        self._outbox.clear()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    async def _subscribe(self, frame: SubscribeFrameIn) -> bytes | None:
        refused = self._refusal(frame.id)
        if refused is not None:
            return encode_update(frame.id, refused, ended=True)
        sub = Subscription(
            frame.id, frame.path, self._parent, self, if_none_match=frame.if_none_match
        )
        if not self._hub.caller_has_room(sub):
            limit = self._hub.max_per_caller
            detail = f"A caller may hold {limit} subscriptions (LIVE_MAX_SUBSCRIPTIONS_PER_CALLER)."
            return encode_update(
                frame.id, _problem(429, "too-many-subscriptions", detail), ended=True
            )
        if not self._hub.reserve(sub):
            detail = "This server holds as many subscriptions as it may; retry later."
            return encode_update(frame.id, _problem(503, "subscriptions-full", detail), ended=True)
        self._subs[frame.id] = sub
        try:
            await self._hub.listen()  # before the first read: no commit after it goes unseen
        except (TimeoutError, OSError):
            self._end(sub)
            detail = "Changes cannot be followed right now (the database is unreachable)."
            return encode_update(frame.id, _problem(503, "unavailable", detail), ended=True)
        await self._hub.first_run(sub)
        return None

    def _refusal(self, sub_id: str) -> SubResponse | None:
        if sub_id in self._subs:
            detail = f"A subscription with id {sub_id!r} is already live on this socket."
            return _problem(409, "duplicate-subscription", detail)
        if len(self._subs) >= self._max:
            detail = f"A socket may hold {self._max} subscriptions (WS_MAX_SUBSCRIPTIONS)."
            return _problem(429, "too-many-subscriptions", detail)
        return None

    def _unsubscribe(self, frame: UnsubscribeFrameIn) -> bytes | None:
        sub = self._subs.get(frame.id)
        if sub is None:
            detail = f"No subscription with id {frame.id!r} is live on this socket."
            return encode_update(frame.id, _problem(404, "no-subscription", detail), ended=True)
        self._end(sub)
        self._queue(sub, SubResponse(204, {}, b"", None), ended=True)
        return None

    def _end(self, sub: Subscription) -> None:
        self._hub.release(sub)
        self._subs.pop(sub.id, None)

    def _queue(self, sub: Subscription, answer: SubResponse, *, ended: bool) -> None:
        """Hold `answer` as the subscription's next update (replacing an unsent older one:
        latest wins); one that does not fit the socket's budget ends the subscription."""
        budget = self._budget
        older = self._outbox.pop(sub.id, None)
        if older is not None:
            self._release(older)
        unsent = _Unsent(answer, ended=ended)
        if not budget.fits(self._cost(answer.body)):
            self._end(sub)
            unsent = _Unsent(_slow_reader(budget.limit), ended=True)
        self._hold(unsent)
        self._outbox[sub.id] = unsent
        self._ready.set()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_updates())

    async def _send_updates(self) -> None:
        with contextlib.suppress(SocketClosed):
            while True:
                await self._ready.wait()
                while self._outbox:
                    sub_id = next(iter(self._outbox))
                    unsent = self._outbox.pop(sub_id)
                    try:
                        frame = encode_update(sub_id, unsent.answer, ended=unsent.ended)
                        await self._socket.send_text(frame)
                    finally:
                        self._release(unsent)
                self._ready.clear()

    def _cost(self, body: bytes) -> int:
        """The bytes holding `body` once more adds: the frame, and the body if none holds it."""
        return _FRAME_BYTES + (0 if id(body) in self._held else len(body))

    def _hold(self, unsent: _Unsent) -> None:
        body = unsent.answer.body
        self._budget.take(self._cost(body))
        self._held.setdefault(id(body), [body, 0])[1] += 1

    def _release(self, unsent: _Unsent) -> None:
        body = unsent.answer.body
        held = self._held[id(body)]
        held[1] -= 1
        given = _FRAME_BYTES
        if held[1] == 0:
            del self._held[id(body)]
            given += len(body)
        self._budget.give(given)


def _slow_reader(limit: int) -> SubResponse:
    detail = (
        f"This socket's unsent answers passed {limit} bytes (WS_MAX_PENDING_BYTES): this"
        " subscription was ended. Read the socket faster, or hold fewer or smaller"
        " subscriptions, then subscribe again."
    )
    return _problem(503, "slow-reader", detail)


def _cannot_change(sub: Subscription, answer: SubResponse) -> bool:
    """Whether a first answer ends the subscription: a failure, or an error that read nothing
    (no such route, a refused or malformed path), which no change can ever alter."""
    if answer.status >= 500:
        return True  # the subscription could not start; the client may subscribe again
    return answer.status >= 400 and (sub.footprint is None or sub.footprint.empty)
