"""The one owner of a unit of work's life: opened per call, finished however the call ends.

HTTP requests (through their endpoint), batches and WebSocket frames all use `unit_scope`;
nothing else commits, rolls back or releases a unit of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from sanic.response import BaseHTTPResponse

from carpool.data.unit_of_work import UnitOfWork, Work
from carpool.observability import metrics
from carpool.web.errors import problem_for

# The container's Factory: a new unit per call (an awaitable one only if overridden so).
UnitOfWorkFactory = Callable[..., UnitOfWork | Awaitable[UnitOfWork]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SERVER_TIMING = "server-timing"
# A committed write's WAL position (with a replica); a later call that sends it back as
# READ_AFTER reads on the primary, so it sees that write (docs/deployment.md).
COMMITTED_AT = "carpool-committed-at"
READ_AFTER = "carpool-read-after"


class UnitScope:
    """An open unit of work and its owner's one decision: how it ends.

    Handlers get `work` (borrowed: they cannot finish it). `finish(response)` commits when
    the call is unsafe, answered below 400 and no borrower asked for a rollback; otherwise it
    rolls back. A refused COMMIT replaces the answer with its problem (409 or 503), because
    nothing was saved. Either way the answer is stamped with `Server-Timing`.
    """

    def __init__(self, unit: UnitOfWork, *, server_timing: bool = True) -> None:
        self._unit = unit
        self._server_timing = server_timing
        self.work: Work = unit.work
        self.started = time.perf_counter()
        self.outcome = "rollback"  # unless `finish` commits

    async def finish(self, response: BaseHTTPResponse) -> BaseHTTPResponse:
        """End the unit as `response` says; returns the answer to send."""
        refused = await self.end(response.status)
        if refused is not None:
            response = refused
        elif self._unit.committed_at is not None:  # with a replica: read-your-writes
            response.headers[COMMITTED_AT] = self._unit.committed_at
        timing = self.timing()
        if timing is not None:
            response.headers[SERVER_TIMING] = timing
        return response

    async def end(self, status: int) -> BaseHTTPResponse | None:
        """End the unit as an answer with `status` says (what `finish` does, for an answer
        that is not a response object: a frame's); the problem to answer instead if the
        COMMIT was refused, else None."""
        unit = self._unit
        commit = not unit.read_only and not unit.roll_back_only and status < 400
        try:
            await _finish_shielded(unit, commit=commit)
            self.outcome = "commit" if commit else "rollback"
        except Exception as exc:  # a refused COMMIT: nothing was saved, and the answer says so
            self.outcome = "refused"
            return problem_for(exc)
        return None

    def timing(self) -> str | None:
        """The `Server-Timing` value to answer with (None when SERVER_TIMING is off)."""
        return self._unit.stats.server_timing() if self._server_timing else None


class unit_scope:  # a function to its callers: `async with unit_scope(...) as scope`
    """A new unit of work for one call with `method` (READ ONLY if the method is safe).

    `server_timing=False` (SERVER_TIMING=false) leaves the Server-Timing header off.
    `observed=False`: the unit is not observed in /metrics (a shared lookup's, whose
    statements the frames it served count as theirs: compose/lookup_rounds.py).

    Leaving the block without `finish` (an exception, a cancellation, a client gone) rolls
    back and releases the connection, even if cancelled again meanwhile.

    A class, not a generator-based context manager: it wraps every call, and the generator
    protocol cost a few per cent of a GET.
    """

    __slots__ = ("_factory", "_method", "_observed", "_scope", "_server_timing")

    def __init__(
        self,
        factory: UnitOfWorkFactory,
        *,
        method: str,
        server_timing: bool = True,
        observed: bool = True,
    ) -> None:
        self._factory = factory
        self._method = method
        self._server_timing = server_timing
        self._observed = observed
        self._scope: UnitScope | None = None

    async def __aenter__(self) -> UnitScope:
        made = self._factory(read_only=self._method in SAFE_METHODS)
        unit = made if isinstance(made, UnitOfWork) else await made
        self._scope = UnitScope(unit, server_timing=self._server_timing)
        return self._scope

    async def __aexit__(self, *exc_info: object) -> None:
        scope = self._scope
        assert scope is not None
        unit = scope._unit
        try:
            if not unit.finished:
                with contextlib.suppress(Exception):
                    await _finish_shielded(unit, commit=False)
        finally:
            if self._observed:
                elapsed = time.perf_counter() - scope.started
                metrics.observe_unit(scope.outcome, elapsed, unit.stats.queries)


async def _finish_shielded(unit: UnitOfWork, *, commit: bool) -> None:
    """Commit or roll back and release, completing even if the caller is cancelled meanwhile.

    A shielded loader fetch may still hold the unit's connection; if a second cancellation
    (a server shutting down) abandoned the wait, the connection would leak.
    """
    if unit.finishes_at_once:
        # Nothing to send and nobody to wait for (a read-only unit, or none checked out):
        # asyncpg's release is shielded itself, and a task per call costs a tenth of a GET.
        await unit.finish(commit=commit)
        return
    finishing = asyncio.ensure_future(unit.finish(commit=commit))
    finishing.add_done_callback(_outcome_seen)
    # Cancelled meanwhile, the caller stops waiting; the shielded task still completes.
    await asyncio.shield(finishing)


def _outcome_seen(task: asyncio.Future[None]) -> None:
    # Nobody may be left to await it: retrieve its error so asyncio does not report it.
    if not task.cancelled():
        task.exception()
