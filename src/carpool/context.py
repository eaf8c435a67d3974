"""What a call and the app carry between the layers: `request.ctx` and `app.ctx`, typed.

A module below every layer (as `carpool.route_names` is), so that observability, web,
compose and the catalog read the same declared attributes. The types of what upper layers
put there are named for the type checker only (`TYPE_CHECKING`): at run time this module
imports nothing of carpool's.

Every attribute a layer reads without having set it has a class-level default, so a read
is a plain attribute (`request.ctx.identity`), not `getattr` with a default: looked up on
the class when the instance has none, no Python call. Batch items and frames start with
their outer request's attributes (`compose.dispatch` copies the instance's `vars`); the
defaults stay on the class.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncio import Task
    from collections.abc import Callable

    from sanic.request import Request

    from carpool.auth.identity import Identity
    from carpool.auth.rate_limits import RateLimits
    from carpool.auth.tokens import Identifier
    from carpool.compose.dispatch import SubrequestHook, SubResponse
    from carpool.compose.live import LiveHub
    from carpool.data.unit_of_work import Work
    from carpool.observability.logs import ItemJournal
    from carpool.observability.tracing import RequestTracing
    from carpool.upstream.inventory import InventoryClient
    from carpool.web.conditional import Preconditions
    from carpool.web.front_door import CallerSockets, FrontDoor


class RequestContext(SimpleNamespace):
    """`request.ctx` of every request, batch item and frame (`CarpoolRequest.make_context`)."""

    request_id: str | None = None  # settled once (observability.logs.request_id)
    started: float | None = None  # perf_counter at the start: the log line's duration
    identity: Identity | None = None  # the caller, once identified (web.access)
    uow: Work | None = None  # the call's unit of work (its own, or the batch's / frame's)
    charged: bool = False  # a batch's item: paid for in advance, with the batch
    parent_request: Request | None = None  # a batch item's or frame's outer request
    preconditions: Preconditions | None = None  # parsed once (web.conditional)
    subresponse: SubResponse | None = None  # its answer, inside a sub-request hook
    journal: ItemJournal | None = None  # a batch's or frame's items, for its log line


class AppContext(SimpleNamespace):
    """`app.ctx` (`carpool.app.create_app`): what the app was built with and has started."""

    # Set as the app is built (`create_app`), never read before.
    container: Any  # the composition root's Container (top-level container.py)
    unit_of_work: Any  # the container's unit-of-work factory provider
    idempotency_ttl_s: float
    caller_sockets: CallerSockets
    # Set as the resources start (the lifespan).
    inventory: InventoryClient
    live: LiveHub
    pool_sampler: Task[None]  # the pool gauges of /metrics
    # Read before they may be set: their defaults.
    front_door: FrontDoor | None = None
    tracing: RequestTracing | None = None  # OpenTelemetry, when configured
    identifier: Identifier | None = None  # None until the resources have started
    rate_limits: RateLimits | None = None
    server_timing: bool = True  # the Server-Timing header on answers
    request_log: bool = False  # REQUEST_LOG
    request_log_items: bool = False  # REQUEST_LOG_ITEMS
    # compose.dispatch.add_subrequest_hook: each hook with its `active` (None: always)
    subrequest_hooks: list[tuple[SubrequestHook, Callable[[], bool] | None]] | None = None
    documents: dict[str, bytes] | None = None  # /openapi.json and the like, built once
