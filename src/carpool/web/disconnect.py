"""A call whose HTTP client has gone is cancelled: its work rolls back, its connection returns.

Under ASGI the server tells the app in one way only: `receive()` answers `http.disconnect`.
Nobody reads `receive` once the body is in, so `until_disconnect` does, while the handler runs.

The race with COMMIT is decided by where the call is: a disconnect heard while the handler runs
cancels it, and the unit of work rolls back. Once the handler has answered, the outcome is
fixed: the unit commits (or rolls back) as the answer says, even if the client leaves during
the COMMIT, and the answer is simply not delivered. A client that left may therefore find its
write done; it reads before retrying, or retries with the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from sanic.models.asgi import MockTransport
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from carpool.web.responses import problem_response

CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"; never sent


async def until_disconnect(
    request: Request, call: Coroutine[Any, Any, BaseHTTPResponse]
) -> BaseHTTPResponse:
    """`call`'s answer; if the client disconnects first, `call` is cancelled (and has unwound
    when this returns) and the answer is a 499 problem, which nobody will read."""
    transport = request.transport
    if not isinstance(transport, MockTransport):  # not served over ASGI: nothing to watch
        return await call
    handler = asyncio.ensure_future(call)
    watcher = asyncio.ensure_future(_disconnected(transport))
    try:
        await asyncio.wait((handler, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping: the handler stops with it
        await _cancel(handler, watcher)
        raise
    if handler.done():
        watcher.cancel()
        return handler.result()
    if watcher.exception() is not None:  # the channel broke: nothing to watch, just answer
        return await handler
    await _cancel(handler, watcher)
    return problem_response(
        CLIENT_CLOSED_REQUEST,
        "The client closed the connection before the answer.",
        title="Client Closed Request",
    )


async def _disconnected(transport: MockTransport) -> None:
    while (await transport.receive())["type"] != "http.disconnect":
        pass  # nothing else can arrive once the body is in; a disconnect is all we wait for


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    # Waited for, so that whatever the handler held is released before the scope ends.
    await asyncio.wait(tasks)
