"""Refused WebSocket handshakes in the log: one JSON line each (logger `carpool.websocket`,
WARNING, with the status, problem type and client address), at most `LINES_PER_WINDOW` per
`WINDOW_S`; past that, the next line that gets through says how many were left out.

Anyone can be refused, so the log must not be theirs to flood: the server's own plain-text
lines about a refused handshake (uvicorn's `ERROR ... without completing handshake`, its
`"WebSocket /ws" 403` and `connection rejected`) are dropped in favour of this one.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("carpool.websocket")
LINES_PER_WINDOW = 20
WINDOW_S = 60.0
# What the ASGI server logs (logger "uvicorn.error") about a handshake the app refused itself.
_SERVER_REFUSAL_LINES = frozenset(
    {
        "ASGI callable returned without completing handshake.",
        "connection rejected (%d %s)",
        '%s - "WebSocket %s" %d',
    }
)


class _DropServerRefusalLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in _SERVER_REFUSAL_LINES


_SERVER_FILTER = _DropServerRefusalLines()


class RefusalLog:
    """Logs refused handshakes, rate-limited (see the module's docstring)."""

    def __init__(self, *, lines: int = LINES_PER_WINDOW, window_s: float = WINDOW_S) -> None:
        self._lines = lines
        self._window_s = window_s
        self._window_start = time.monotonic()
        self._logged = 0
        self._left_out = 0
        server_log = logging.getLogger("uvicorn.error")
        if _SERVER_FILTER not in server_log.filters:
            server_log.addFilter(_SERVER_FILTER)

    def refused(self, status: int, problem_type: str, address: str) -> None:
        """A handshake from `address` was refused with `status` (`problem_type`)."""
        now = time.monotonic()
        if now - self._window_start >= self._window_s:
            self._window_start, self._logged = now, 0
        if self._logged >= self._lines:
            self._left_out += 1
            return
        self._logged += 1
        left_out, self._left_out = self._left_out, 0
        log.warning(
            "websocket handshake refused",
            extra={
                "status": status,
                "type": problem_type,
                "client": address,
                "refusals_left_out": left_out,
            },
        )
