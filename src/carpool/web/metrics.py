"""`GET /metrics`: Prometheus' text format, declared like every route (not composable)."""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.observability import metrics
from carpool.web.endpoints import PUBLIC, Answer, Doc, endpoint


def metrics_routes(*, scope: str | None = PUBLIC) -> Blueprint:
    """The `/metrics` route, public unless `scope` (METRICS_SCOPE) says what a caller needs."""
    blueprint = Blueprint("metrics")

    @endpoint(
        blueprint,
        "/metrics",
        scope=scope,
        composable=False,
        unit=False,
        doc=Doc(
            "metrics",
            "Prometheus metrics of every worker (text format)",
            "operations",
            answers={
                200: Answer(
                    "Prometheus text exposition format.",
                    example="# TYPE carpool_calls_total counter\n",
                    media_type=metrics.CONTENT_TYPE,
                )
            },
            description="Calls by route, method, status and transport; unit-of-work"
            " durations and queries; pool, upstream, socket and frame figures; 503s and 429s.",
        ),
    )
    async def metrics_text(request: Request) -> HTTPResponse:
        """Every metric, of all workers when PROMETHEUS_MULTIPROC_DIR is set."""
        return HTTPResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)

    return blueprint
