"""carpool's Python client: calls batched, multiplexed over one socket, and followed live.

async with Client("http://127.0.0.1:8000", token=TOKEN) as client:
    grommet = await client.get_grommet(grommet_id=1)
    one, two = await asyncio.gather(client.get("/grommets/1"), client.get("/widgets/1"))
    async for update in client.subscribe("/grommets/1"):
        print(update.status, update.json())
"""

from __future__ import annotations

from carpool_client._calls import NO_BODY, RetryPolicy, TokenSource
from carpool_client._client import Client, Transport
from carpool_client._live import Subscription
from carpool_client._response import (
    CarpoolError,
    ConnectionLost,
    ProblemError,
    Response,
    TransactionFailed,
    Update,
)
from carpool_client._transaction import Handle, Ref, Transaction

__all__ = [
    "NO_BODY",
    "CarpoolError",
    "Client",
    "ConnectionLost",
    "Handle",
    "ProblemError",
    "Ref",
    "Response",
    "RetryPolicy",
    "Subscription",
    "TokenSource",
    "Transaction",
    "TransactionFailed",
    "Transport",
    "Update",
]
