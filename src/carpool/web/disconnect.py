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
import contextlib
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
    when this returns) and the answer is a 499 problem, which nobody will read.

    `call` runs in the caller's own task; one watcher task waits for the disconnect and
    cancels that task (a task for the handler and `asyncio.wait` per call cost a tenth of
    a GET).
    """
    transport = request.transport
    if not isinstance(transport, MockTransport):  # not served over ASGI: nothing to watch
        return await call
    caller = asyncio.current_task()
    assert caller is not None
    heard: list[bool] = []  # [True] once the watcher has cancelled the caller
    watcher = asyncio.ensure_future(_cancel_on_disconnect(transport, caller, heard))
    try:
        response = await call
    except asyncio.CancelledError:
        if not heard or caller.uncancel() > 0:  # the server is stopping: stop with it
            watcher.cancel()
            raise
        return problem_response(
            CLIENT_CLOSED_REQUEST,
            "The client closed the connection before the answer.",
            title="Client Closed Request",
        )
    except BaseException:
        watcher.cancel()
        raise
    watcher.cancel()
    if heard:  # the handler answered although it was cancelled: its answer stands
        caller.uncancel()
    return response


async def _cancel_on_disconnect(
    transport: MockTransport, caller: asyncio.Task[Any], heard: list[bool]
) -> None:
    with contextlib.suppress(Exception):  # the channel broke: nothing to watch, just answer
        await _disconnected(transport)
        heard.append(True)
        caller.cancel()


async def _disconnected(transport: MockTransport) -> None:
    while (await transport.receive())["type"] != "http.disconnect":
        pass  # nothing else can arrive once the body is in; a disconnect is all we wait for
