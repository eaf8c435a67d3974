"""The inventory service: one shared aiohttp session per worker, and a client for stock levels."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from carpool.data.unit_of_work import Work
from carpool.errors import Unavailable, UpstreamFailed, UpstreamTimedOut
from carpool.observability import metrics
from carpool.upstream.lookups import CallLookups, StockFor

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger("carpool.upstream")
NOT_CONFIGURED = "No inventory service is configured (set INVENTORY_URL)."
DEFAULT_MAX_BYTES = 1_048_576
DEFAULT_MAX_CALLS = 200
_CHUNK_BYTES = 64 * 1024


async def client_session(
    *, timeout_s: float, max_connections: int, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[aiohttp.ClientSession]:
    """Container resource: the worker's one outbound HTTP session, closed at shutdown.

    Every call is bounded by `timeout_s` in total; at most `max_connections` are open at
    once. With a tracer provider, each call is a client span and carries `traceparent`.
    """
    trace_configs: list[aiohttp.TraceConfig] = []
    if tracer_provider is not None:
        # Imported only when tracing is on: no cost at all when it is off.
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        trace_configs.append(create_trace_config(tracer_provider=tracer_provider))
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=max_connections),
        trace_configs=trace_configs,
    )
    try:
        yield session
    finally:
        await session.close()


class InventoryClient:
    """Asks `GET {base_url}/stock/{grommet_id}` how many of a grommet are available.

    `base_url` None means no inventory service is configured: every call is Unavailable.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_calls: int = DEFAULT_MAX_CALLS,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/") if base_url else None
        self.max_bytes = max_bytes
        self.max_calls = max_calls

    def stock_for(self, work: Work, outer: object, *, request_id: str | None = None) -> StockFor:
        """The stock levels of one call (`outer`) on `work`: each grommet asked about once per
        unit of work, at most `max_calls` lookups per call (`upstream/lookups.py`)."""
        ask = functools.partial(self.available, request_id=request_id)
        lookups = work.loader(
            "upstream-stock", lambda _: CallLookups(ask, max_calls=self.max_calls)
        )
        return StockFor(lookups, outer)

    @property
    def configured(self) -> bool:
        """Whether an inventory service is configured at all."""
        return self.base_url is not None

    async def available(self, grommet_id: int, *, request_id: str | None = None) -> int:
        """Units of `grommet_id` in stock (>= 0).

        Raises Unavailable (not configured), UpstreamTimedOut (no answer in time) or
        UpstreamFailed (an error status, a failed connection, an answer larger than
        `max_bytes`, or an unreadable answer).
        """
        if self.base_url is None:
            raise Unavailable(NOT_CONFIGURED)
        headers = {"accept": "application/json"}
        if request_id is not None:
            headers["x-request-id"] = request_id
        outcome = "error"
        try:
            raw = await self._get(f"{self.base_url}/stock/{grommet_id}", headers, grommet_id)
            level = _stock_level(raw, grommet_id)
            outcome = "ok"
            return level
        except UpstreamTimedOut:
            outcome = "timeout"
            raise
        finally:
            metrics.UPSTREAM_CALLS.labels("inventory", outcome).inc()

    async def _get(self, url: str, headers: Mapping[str, str], grommet_id: int) -> bytes:
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False) as response:
                if response.status != 200:
                    raise UpstreamFailed(
                        f"The inventory service answered {response.status}"
                        f" for grommet {grommet_id}."
                    )
                return await _read_capped(response, self.max_bytes, grommet_id)
        except TimeoutError:
            # Checked before ClientError: aiohttp's timeouts are both.
            raise UpstreamTimedOut(
                f"The inventory service did not answer in time for grommet {grommet_id}."
            ) from None
        except aiohttp.ClientError as exc:
            # The cause is for the operator's log; the client learns no library's class names.
            log.warning("inventory call for grommet %s failed: %r", grommet_id, exc)
            raise UpstreamFailed(
                f"The inventory service could not be reached for grommet {grommet_id}."
            ) from None


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int, grommet_id: int) -> bytes:
    """The body, read chunk by chunk; UpstreamFailed as soon as it passes `max_bytes` (the
    rest is never read: the connection is closed, not drained)."""
    too_large = UpstreamFailed(
        f"The inventory service's answer for grommet {grommet_id} is larger than"
        f" {max_bytes} bytes (UPSTREAM_MAX_BYTES)."
    )
    if response.content_length is not None and response.content_length > max_bytes:
        response.close()
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _stock_level(raw: bytes, grommet_id: int) -> int:
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamFailed(
            f"The inventory service's answer for grommet {grommet_id} is not JSON."
        ) from None
    available = data.get("available") if isinstance(data, dict) else None
    answered_for = data.get("grommet_id") if isinstance(data, dict) else None
    same_grommet = type(answered_for) is int and answered_for == grommet_id
    if not same_grommet or type(available) is not int or available < 0:
        raise UpstreamFailed(
            f"The inventory service's answer for grommet {grommet_id} is not"
            ' {"grommet_id": <that id>, "available": <a count of 0 or more>}.'
        )
    return available
