"""`POST /batch`: many sub-requests on one unit of work, answered in one spliced document."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
from sanic import Blueprint
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.compose.dispatch import SubRequest, SubResponse, capture, dispatch_subrequest
from carpool.compose.encoding import encode_batch, is_json
from carpool.compose.envelope import (
    BatchAnswer,
    BatchItem,
    BatchLimits,
    Envelope,
    batch_request_model,
    parse_envelope,
)
from carpool.compose.examples import CallExamples
from carpool.compose.references import (
    TooLarge,
    Unresolvable,
    bounded,
    referenced_ids,
    resolve_pointer,
    substitute_body,
    substitute_path,
    substitute_text,
)
from carpool.data.unit_of_work import Work
from carpool.errors import Invalid, TimedOut
from carpool.observability import logs, metrics
from carpool.settings import Settings
from carpool.web.access import charge_or_refuse
from carpool.web.endpoints import AUTHENTICATED, PUBLIC, Answer, Doc, endpoint
from carpool.web.errors import problem_for
from carpool.web.inputs import depth_exceeds, json_body, max_depth, too_deep
from carpool.web.responses import JSON, Response, json_response, problem_response

_FAILED_DEPENDENCY = "urn:carpool:problem:failed-dependency"
TOO_LARGE = "urn:carpool:problem:batch-too-large"


def _failed_dependency(detail: str) -> SubResponse:
    return capture(problem_response(424, detail, type_=_FAILED_DEPENDENCY))


def _too_large(budget: int) -> SubResponse:
    detail = (
        f"Not answered: the batch's answers together would pass {budget} bytes"
        " (BATCH_MAX_RESPONSE_BYTES); split the batch or ask for smaller pages."
    )
    return capture(problem_response(413, detail, type_=TOO_LARGE))


@dataclass(slots=True)
class _Slot:
    item: BatchItem
    depends_on: tuple[int, ...] = ()
    has_references: bool = False
    response: SubResponse | None = None
    # Set once answered; made only for an item that others depend on.
    done: asyncio.Event | None = None
    _document: Any = None

    def document(self) -> Any:
        """The answer as `{"status", "headers", "body"}`, for references to point into."""
        if self._document is None:
            assert self.response is not None
            raw = self.response.body
            body = orjson.loads(raw) if raw and is_json(self.response.content_type) else None
            self._document = {
                "status": self.response.status,
                "headers": self.response.headers,
                "body": body,
            }
        return self._document


class BatchRun:
    """Runs a batch's items on one unit of work, in order, as DESIGN.md's "Batch" says.

    Unsafe items run one at a time in request order; the safe items between them run
    concurrently (so their lookups coalesce). Atomic: the first failure stops the batch.
    Non-atomic: each unsafe item runs in its own SAVEPOINT. Once the item bodies together
    pass `max_response_bytes`, the item that passed it and every later one answer 413
    (`batch-too-large`) instead (later ones are not run).
    """

    def __init__(
        self,
        parent: Request,
        envelope: Envelope,
        uow: Work,
        *,
        max_response_bytes: int,
        journal: logs.ItemJournal | None = None,
    ) -> None:
        self._parent = parent
        self._journal = journal
        self._atomic = envelope.atomic
        self._uow = uow
        self._budget = max_response_bytes
        self._spent = 0
        self._slots = [_Slot(item) for item in envelope.items]
        self._by_id = {slot.item.id: slot for slot in self._slots}
        self._max_depth = max_depth(parent)
        self._tally = metrics.CallTally()  # the items' counts, added to /metrics once
        self.failed_at: int | None = None

    async def run(self) -> list[tuple[str, SubResponse]]:
        """Every item's answer, in request order."""
        try:
            return await self._run_all()
        finally:
            self._tally.flush()

    async def _run_all(self) -> list[tuple[str, SubResponse]]:
        self._refuse_deep_bodies()
        self._link_dependencies()
        for group in self._groups():
            if self._atomic and self.failed_at is not None:
                break
            # A batch of fifty large items must not hold the event loop for all fifty. Before
            # the first group too: with the database gone, a checkout fails at once and a
            # whole batch could answer without ever yielding (a client calling in-process, as
            # the fault suite's does, would then starve the loop).
            await asyncio.sleep(0)
            pending = [slot for slot in group if slot.response is None]
            if len(pending) == 1 and not pending[0].item.safe:
                await self._run_unsafe(pending[0])
            elif pending:
                await self._run_safe(pending)
            self._note_failure(group)
        return [(slot.item.id, self._final(slot)) for slot in self._slots]

    def _refuse_deep_bodies(self) -> None:
        """Answer 422 (as the single request would) every item nested past JSON_MAX_DEPTH,
        before anything walks its body."""
        for slot in self._slots:
            if slot.item.has_body and depth_exceeds(slot.item.body, self._max_depth):
                slot.response = capture(problem_for(too_deep(self._max_depth)))

    def _link_dependencies(self) -> None:
        position = {slot.item.id: index for index, slot in enumerate(self._slots)}
        for index, slot in enumerate(self._slots):
            item = slot.item
            if slot.response is not None or not _may_refer(item):
                continue
            refs = {*referenced_ids(item.path), *referenced_ids(item.body)}
            refs.update(ref for value in item.headers.values() for ref in referenced_ids(value))
            for ref in sorted(refs):
                if position.get(ref, index) >= index:
                    where = "an unknown item" if ref not in position else "an item not before it"
                    slot.response = _failed_dependency(f"it refers to {where}: {ref!r}")
                    break
            slot.depends_on = tuple(sorted(position[ref] for ref in refs if ref in position))
            slot.has_references = bool(refs)
            for depended in slot.depends_on:
                dependency = self._slots[depended]
                if dependency.done is None:
                    dependency.done = asyncio.Event()
                    if dependency.response is not None:
                        dependency.done.set()

    def _groups(self) -> list[list[_Slot]]:
        groups: list[list[_Slot]] = []
        for slot in self._slots:
            if slot.item.safe and groups and groups[-1][0].item.safe:
                groups[-1].append(slot)
            else:
                groups.append([slot])
        return groups

    def _note_failure(self, group: list[_Slot]) -> None:
        for slot in group:
            assert slot.response is not None
            if slot.response.status >= 400 and self.failed_at is None:
                self.failed_at = slot.item.index

    def _final(self, slot: _Slot) -> SubResponse:
        if self._atomic and self.failed_at is not None and slot.item.index > self.failed_at:
            failed = self._slots[self.failed_at].item.id
            return _failed_dependency(f"not run: item {failed!r} failed and the batch is atomic")
        assert slot.response is not None
        return slot.response

    async def _run_unsafe(self, slot: _Slot) -> None:
        if self._atomic:
            await self._run(slot)
            return
        async with self._uow.savepoint() as savepoint:
            await self._run(slot)
            assert slot.response is not None
            if slot.response.status >= 400:
                await savepoint.undo()

    async def _run_safe(self, slots: list[_Slot]) -> None:
        if self._atomic or self._uow.read_only:
            await _together([self._run(slot) for slot in slots])
            return
        # A read the database refuses aborts the whole transaction, and the COMMIT of an
        # aborted transaction quietly rolls back: the other items' writes must not go with it.
        async with self._uow.savepoint() as savepoint:
            await _together([self._run(slot) for slot in slots])
            if any(slot.response is None or slot.response.status >= 400 for slot in slots):
                await savepoint.undo()

    async def _run(self, slot: _Slot) -> None:
        try:
            if self._spent > self._budget:
                response = _too_large(self._budget)
            elif slot.depends_on or slot.has_references:
                response = await self._answer(slot)
            else:  # most items: run as sent
                item, body = slot.item, _body(slot.item)
                sub = SubRequest(item.method, item.path, item.headers, body, self._sent(body))
                response = await self._dispatch(sub)
            slot.response = self._within_budget(response)
        finally:
            if slot.done is not None:
                slot.done.set()

    def _within_budget(self, response: SubResponse) -> SubResponse:
        if self._spent > self._budget:
            return _too_large(self._budget)
        self._spent += len(response.body)
        return response if self._spent <= self._budget else _too_large(self._budget)

    async def _answer(self, slot: _Slot) -> SubResponse:
        """The answer of an item that refers to others, once they have answered."""
        for index in slot.depends_on:
            dependency = self._slots[index]
            assert dependency.done is not None
            await dependency.done.wait()
            assert dependency.response is not None
            if dependency.response.status >= 400:
                failed = dependency.item.id
                return _failed_dependency(f"it depends on item {failed!r}, which failed")
        try:
            sub = self._resolve(slot.item)
        except Unresolvable as exc:
            return _failed_dependency(f"a reference does not resolve: {exc}")
        except TooLarge as exc:
            return capture(problem_for(PayloadTooLarge(f"The item is too large: {exc}.")))
        except Invalid as exc:  # references made it too deep
            return capture(problem_for(exc))
        return await self._dispatch(sub)

    def _dispatch(self, sub: SubRequest) -> Coroutine[Any, Any, SubResponse]:
        # Paid for up front (`run_batch`): an item takes nothing more from the budget.
        return dispatch_subrequest(
            self._parent, sub, self._uow, charged=True, tally=self._tally, journal=self._journal
        )

    def _resolve(self, item: BatchItem) -> SubRequest:
        def lookup(item_id: str, pointer: str) -> Any:
            return resolve_pointer(self._by_id[item_id].document(), pointer)

        # No more than the outer request itself could have carried.
        limited = bounded(lookup, max_bytes=int(self._parent.app.config.REQUEST_MAX_SIZE))
        body = None
        if item.has_body:
            substituted = substitute_body(item.body, limited)
            if depth_exceeds(substituted, self._max_depth):
                raise too_deep(self._max_depth)
            body = orjson.dumps(substituted)
        headers = {name: substitute_text(value, limited) for name, value in item.headers.items()}
        path = substitute_path(item.path, limited)
        return SubRequest(item.method, path, headers, body, self._sent(body))

    def _sent(self, body: bytes | None) -> int | None:
        """At most the bytes the client sent `body` in: it came inside the envelope."""
        envelope = self._parent.body
        return min(len(body), len(envelope)) if body and envelope else None


async def _together(calls: list[Coroutine[Any, Any, None]]) -> None:
    """Run `calls` concurrently, a task each (their lookups coalesce); return once all are done.

    What `asyncio.gather` does here, without its callback and bookkeeping per task (about a
    microsecond of an item's thirty, measured alone): the tasks finish together (their
    loader answers them in one turn), so awaiting them in order suspends once. If this is
    cancelled (a batch past its time) or a call fails, the others are cancelled and waited
    for: none outlives the batch.
    """
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(call) for call in calls]
    try:
        for task in tasks:
            await task
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for task in tasks:  # seen: asyncio would report a second failure as never retrieved
            if not task.cancelled():
                task.exception()
        raise


def _body(item: BatchItem) -> bytes | None:
    """An item's body as sent, encoded; None if it has none."""
    return orjson.dumps(item.body) if item.has_body else None


def _may_refer(item: BatchItem) -> bool:
    """Whether `item` may hold a reference (`{{`) at all: most items' paths and headers are
    seen to hold none without walking them."""
    return (
        item.has_body or "{{" in item.path or any("{{" in value for value in item.headers.values())
    )


async def run_batch(
    parent: Request,
    data: Any,
    work: Work,
    settings: Settings,
    *,
    journal: logs.ItemJournal | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Validate a decoded batch body, run it on `work`; the answer bytes and extra headers.
    Each item run is noted in `journal` (the request log's), if given.

    Every item counts as one call of the caller's rate-limit budget: all are taken before
    any runs, or the batch is refused whole (RateLimited, 429). The headers are the budget's.

    `work` is borrowed: the caller's unit-of-work scope ends it. An atomic batch with a
    failed item asks it to roll back (the answer is still 200, `"committed": false`).
    Raises Invalid for a bad envelope (nothing runs) and TimedOut past BATCH_TIMEOUT_S (the
    scope then rolls back); a refused COMMIT becomes the scope's problem answer, so a
    `"committed": true` that reaches the client is the truth.
    """
    envelope = parse_envelope(data, max_items=settings.batch_max_items)
    headers = await charge_or_refuse(parent, len(envelope.items))
    if all(item.safe for item in envelope.items):
        work.restrict_to_read_only()  # as each item's single request would run: READ ONLY
    limit = settings.batch_max_response_bytes
    run = BatchRun(parent, envelope, work, max_response_bytes=limit, journal=journal)
    try:
        async with asyncio.timeout(settings.batch_timeout_s):
            items = await run.run()
    except TimeoutError:
        raise TimedOut(
            f"The batch did not finish within {settings.batch_timeout_s:g} s;"
            " nothing it did was kept."
        ) from None
    committed = not (envelope.atomic and run.failed_at is not None)
    if not committed:
        work.roll_back_at_end()
    return encode_batch(committed=committed, items=items), headers


def batch_routes(settings: Settings, examples: CallExamples) -> Blueprint:
    """The `/batch` routes, with the limits in `settings`; their description shows `examples`."""
    blueprint = Blueprint("batch")
    limits = BatchLimits(
        max_items=settings.batch_max_items, timeout_s=settings.batch_timeout_s
    ).model_dump()

    @endpoint(
        blueprint,
        "/batch",
        scope=PUBLIC,
        composable=False,
        unit=False,
        doc=Doc(
            "getBatchLimits",
            "The batch limits in force",
            "batch",
            answers={200: Answer("The limits.", BatchLimits, limits)},
        ),
    )
    async def batch_limits(request: Request) -> HTTPResponse:
        """The limits in force, so that clients can split their work before sending it."""
        return json_response(limits)

    @endpoint(
        blueprint,
        "/batch",
        methods=("POST",),
        scope=AUTHENTICATED,
        composable=False,
        doc=Doc(
            "runBatch",
            "Run many sub-requests on one unit of work; one answer for all",
            "batch",
            answers={
                200: Answer(
                    "Every item's answer, in request order (also when items failed).",
                    BatchAnswer,
                    examples.batch_answer,
                )
            },
            # 412 and the Idempotency-Key's 409 / 422, with their prose, are the pipeline's
            # (web/http_doc.py): only what is the batch's own is said here.
            errors=(504,),
            body=batch_request_model(settings.batch_max_items),
            body_example=examples.batch,
            description="Conditions (If-Match, If-None-Match) go on the items, never on the"
            " batch (412).",
        ),
    )
    async def batch(request: Request) -> HTTPResponse:
        """Run every item on this request's unit of work; one answer for all."""
        # Unbounded here: each item's body is held to JSON_MAX_DEPTH on its own (a 422 item).
        data = json_body(request, bounded=False)
        # Its items go on the batch's own log line (`logs.log_request`).
        journal = request.ctx.journal = logs.journal_for(request)
        body, headers = await run_batch(request, data, request.ctx.uow, settings, journal=journal)
        return Response(body, headers=headers, content_type=JSON)

    return blueprint
