"""OpenTelemetry traces: a span per request, per sub-request (batch item, WebSocket frame).

Tracing is off unless OTEL_TRACES_EXPORTER names an exporter; off, nothing here runs on
the request path. The SDK reads the other OTEL_* variables itself (endpoint, headers,
service name, sampler, batch sizes); carpool never installs a global tracer provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sanic.request import Request

from carpool.observability import sql_spans
from carpool.observability.logs import caller_of
from carpool.route_names import route_of

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sanic import Sanic

TRACER_NAME = "carpool"
_DEFAULT_SERVICE_NAME = "carpool"


def make_tracer_provider(exporters: str, *, disabled: bool = False) -> TracerProvider | None:
    """A tracer provider exporting to each of `exporters` (OTEL_TRACES_EXPORTER), or None.

    None (tracing off) when `disabled` (OTEL_SDK_DISABLED) or no exporter is named.
    `otlp` is OTLP over HTTP/protobuf (OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4318).
    """
    names = [name for name in exporters.split(",") if name and name != "none"]
    if disabled or not names:
        return None
    # Imported only when tracing is on.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: _DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for name in dict.fromkeys(names):
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_provider_resource(exporters: str, *, disabled: bool) -> Iterator[TracerProvider | None]:
    """Container resource: the worker's tracer provider (or None), flushed at shutdown."""
    provider = make_tracer_provider(exporters, disabled=disabled)
    try:
        yield provider
    finally:
        if provider is not None:
            provider.shutdown()


class RequestTracing:
    """Spans for requests and sub-requests, named `METHOD /route/{template}`."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @contextmanager
    def request_span(self, request: Request) -> Iterator[None]:
        """A server span around the whole request, child of the caller's `traceparent`."""
        with self.tracer.start_as_current_span(
            request.method,
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path},
        ) as span:
            try:
                yield
            finally:
                response = getattr(request.stream, "response", None)
                _describe(span, request, getattr(response, "status", None))

    @asynccontextmanager
    async def subrequest_span(self, request: Request) -> AsyncIterator[None]:
        """Sub-request hook: a child span per batch item or WebSocket frame."""
        parent: Request = request.ctx.parent_request
        with self.tracer.start_as_current_span(
            request.method,
            kind=SpanKind.INTERNAL,
            attributes={
                "http.request.method": request.method,
                "url.path": request.path,
                "carpool.parent_route": route_of(parent) or "",
            },
        ) as span:
            yield
            sub = request.ctx.subresponse
            _describe(span, request, sub.status if sub is not None else None)


def _describe(span: Any, request: Request, status: int | None) -> None:
    route = route_of(request)
    if route is not None:
        span.update_name(f"{request.method} {route}")
        span.set_attribute("http.route", route)
    request_id: str | None = request.ctx.request_id
    if request_id is not None:
        span.set_attribute("carpool.request_id", request_id)
    sub = caller_of(request)
    if sub is not None:  # who called; never their token
        span.set_attribute("enduser.id", sub)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


def install(app: Sanic[Any, Any], provider: TracerProvider | None) -> RequestTracing | None:
    """Trace `app`'s requests and SQL with `provider`; None: do nothing at all.

    Returns the tracing, whose `subrequest_span` the app factory hooks to sub-requests.
    """
    if provider is None:
        return None
    tracing = RequestTracing(provider.get_tracer(TRACER_NAME))
    app.ctx.tracing = tracing

    @app.after_server_start
    async def trace_sql(app: Sanic[Any, Any]) -> None:
        sql_spans.instrument(app.ctx.container.database(), tracing.tracer)

    return tracing
