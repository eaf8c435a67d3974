"""The real app, whose worker dies (SIGKILL) right before it would send an answer, on request.

`uvicorn tests.e2e.crash_asgi:app`: a request carrying `X-Test-Die-Before-Answer` has run and
committed, and the process is killed as the answer's first byte would leave: the crash a retry
with an Idempotency-Key must survive.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from container import Container

from carpool.app import create_app

Message = MutableMapping[str, Any]
inner = create_app(Container())


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    headers = dict(scope.get("headers") or [])
    if scope["type"] != "http" or b"x-test-die-before-answer" not in headers:
        await inner(scope, receive, send)
        return

    async def die_instead(message: Message) -> None:
        if message["type"] == "http.response.start":
            os.kill(os.getpid(), signal.SIGKILL)
        await send(message)

    await inner(scope, receive, die_instead)
