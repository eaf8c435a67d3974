"""The request class: Sanic's, with the body size and read time limits enforced under ASGI."""

from __future__ import annotations

import asyncio
from typing import Any

from sanic.exceptions import PayloadTooLarge, RequestTimeout
from sanic.request import Request

from carpool.context import RequestContext

READ_TIMEOUT_DEFAULT_S = 10.0


class CarpoolRequest(Request):
    """A Sanic request whose body may not exceed the app's REQUEST_MAX_SIZE (413 past it),
    nor take longer than REQUEST_READ_TIMEOUT to arrive (408 past it: a client trickling
    its body holds a connection and a task, not a database connection, but not for ever).

    Sanic enforces both in its own HTTP server, not when served by an ASGI server.
    """

    # `ctx` a plain slot, set as the request is made: Sanic's `ctx` is a property, a Python
    # call at each of the ten or so reads a call makes (six per batch item).
    __slots__ = ("__dict__", "ctx")
    ctx: RequestContext  # a slot where Sanic has a property

    composed: Any = None
    """What every sub-request of this request (batch item, frame) shares, worked out once by
    `compose.dispatch` at the first one; None until then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx = RequestContext()  # the slot, not the property

    @staticmethod
    def make_context() -> RequestContext:
        """The typed context (`carpool.context`): its attributes declared, with defaults."""
        return RequestContext()

    async def receive_body(self) -> None:
        if self.body:
            return
        headers = self.headers
        if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
            # No body was sent (RFC 9112, 6.3): nothing to wait for (most GETs).
            return
        limit = int(self.app.config.REQUEST_MAX_SIZE)
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        seconds = float(getattr(self.app.config, "REQUEST_READ_TIMEOUT", READ_TIMEOUT_DEFAULT_S))
        try:
            async with asyncio.timeout(seconds):
                self.body = await self._read_body(limit)
        except TimeoutError:
            raise RequestTimeout(f"The request body did not arrive within {seconds:g} s.") from None

    async def _read_body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.stream:  # type: ignore[union-attr]
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)
