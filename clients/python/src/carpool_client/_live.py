"""`client.subscribe(path)`: a GET's answer, then its new answer after each committed change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

from carpool_client._response import ProblemError, Update
from carpool_client._socket import LiveState, SocketLink


class Subscription:
    """The live answers of one path, as an async iterator of `Update`s.

    The first update is the current answer; then one after each committed change that
    alters it (a deleted resource's 404 included: the subscription stays). Across a dropped
    socket the link reconnects, re-authenticates and resubscribes with the last `etag`, so
    an answer that changed meanwhile is yielded and nothing is missed. Leaving the loop (or
    the `async with`) unsubscribes. A subscription the server ends with an error (401, 403,
    a path that cannot be followed) raises its `ProblemError`, unless `raise_for_status`
    is false: then that last update is yielded and the iteration stops.
    """

    def __init__(self, link: SocketLink, path: str, *, raise_for_status: bool = True) -> None:
        self.path = path
        self._link = link
        self._raise = raise_for_status
        self._id: str | None = None
        self._state: LiveState | None = None

    async def __aenter__(self) -> Subscription:
        await self._open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Update]:
        return self._updates()

    async def _open(self) -> LiveState:
        if self._state is None:
            self._id, self._state = await self._link.subscribe(self.path)
        return self._state

    async def _updates(self) -> AsyncIterator[Update]:
        state = await self._open()
        try:
            while True:
                update = await state.updates.get()
                if update.ended:
                    if update.status >= 400:
                        if self._raise:
                            raise ProblemError(update.as_response())
                        yield update
                    return
                yield update
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Unsubscribe (once)."""
        if self._id is not None:
            live_id, self._id = self._id, None
            await self._link.unsubscribe(live_id)
