"""The request class: Sanic's, with the body size limit enforced under ASGI too."""

from __future__ import annotations

from sanic.exceptions import PayloadTooLarge
from sanic.request import Request


class CarpoolRequest(Request):
    """A Sanic request whose body may not exceed the app's REQUEST_MAX_SIZE (413 past it).

    Sanic enforces the limit in its own HTTP server, not when served by an ASGI server.
    """

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
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.stream:  # type: ignore[union-attr]
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
        self.body = b"".join(chunks)
