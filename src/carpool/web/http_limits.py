"""uvicorn's httptools protocol with a limit on a request's head (request line and headers).

uvicorn's `--h11-max-incomplete-event-size` bounds headers under h11 only; under httptools
(what `uvicorn[standard]` serves with, and `make run`) nothing does: a client could send a
64 MB header and have it read, held and handed to the app. Served with
`uvicorn --http carpool.web.http_limits:BoundedHttpToolsProtocol`, a head larger than
`MAX_HEAD_BYTES` is answered `431` (problem+json) and the connection closed, at most one read
(the server's read size) past the limit.
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
_PROBLEM = orjson.dumps(
    {
        "type": "urn:carpool:problem:header-too-large",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": f"The request line and headers together may be at most {MAX_HEAD_BYTES} bytes.",
    }
)
_REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/problem+json\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_PROBLEM)).encode() + b"\r\n\r\n" + _PROBLEM
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a head past `max_head_bytes` with 431 and closes.

    Two counts, because httptools reports a header only once it is complete: the raw bytes
    read while the head is incomplete (a header that never ends), and the parsed request
    line and headers (a large head that arrived in one read).
    """

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request's line and headers (not its body)
        self._read_in_head = 0
        self._parsed_head = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        """Parse `data`; past the limit with the head still incomplete, answer 431 and close."""
        if self._refused:
            return
        if self._in_head:
            self._read_in_head += len(data)
        super().data_received(data)
        if self._in_head and self._read_in_head > self.max_head_bytes:
            self._refuse()

    def on_url(self, url: bytes) -> None:
        """Count the request line's URL, then as uvicorn does."""
        self._parsed_head += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count a header, then as uvicorn does."""
        self._parsed_head += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: run the request, unless its head was too large."""
        self._in_head = False
        if self._parsed_head > self.max_head_bytes:
            self._refuse()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """As uvicorn does, unless the request was refused."""
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """The request is complete: the next bytes begin the next request's head."""
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True
        self._read_in_head = self._parsed_head = 0

    def _refuse(self) -> None:
        self._refused = True
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(_REFUSAL)
            self.transport.close()
