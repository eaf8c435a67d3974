"""What a socket has been handed to send and has not sent yet, in bytes, within a budget.

A client that does not read must not make the server hold answers for it without bound: each
socket's unsent answers (frame answers waiting to go, subscription updates waiting in their
outbox) count against `WS_MAX_PENDING_BYTES`. Past it the socket stops reading new frames
(backpressure) and subscription updates that do not fit end their subscription
(`subscriptions.py`); one answer always fits an empty budget, so an answer larger than the
budget still goes, alone.
"""

from __future__ import annotations

import asyncio


class SendBudget:
    """The unsent bytes of one socket, and whether more may be taken on (`limit`)."""

    __slots__ = ("_room", "limit", "pending")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self._room = asyncio.Event()
        self._room.set()

    @property
    def over(self) -> bool:
        """Whether the unsent bytes are past the limit (the socket stops reading frames)."""
        return self.pending > self.limit

    def fits(self, size: int) -> bool:
        """Whether `size` more bytes may wait: within the limit, or the first to wait at all."""
        return self.pending == 0 or self.pending + size <= self.limit

    def take(self, size: int) -> None:
        """`size` bytes are now waiting to be sent."""
        self.pending += size
        if self.pending > self.limit:
            self._room.clear()

    def give(self, size: int) -> None:
        """`size` bytes have been sent (or dropped)."""
        self.pending = max(0, self.pending - size)
        if self.pending <= self.limit:
            self._room.set()

    async def room(self) -> None:
        """Return once the unsent bytes are back within the limit."""
        await self._room.wait()
