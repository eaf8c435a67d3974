"""Tracing: spans for requests, batch items, WebSocket frames, SQL and inventory calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from websockets.asyncio.client import connect

from carpool.observability.tracing import make_tracer_provider
from carpool.settings import ConfigurationError, Settings, load_settings
from tests.conftest import make_container
from tests.fake_inventory import FakeInventory, fake_inventory
from tests.helpers import AUTH, create_app, create_grommet, create_widget
from tests.uvicorn_in_process import serving

CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_TRACEPARENT = f"00-{CALLER_TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
async def inventory() -> AsyncIterator[FakeInventory]:
    async with fake_inventory() as fake:
        yield fake


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def traced_container(database_url: str, inventory: FakeInventory, provider: Any) -> Any:
    """A container whose tracer provider is `provider` (the container's own is off)."""
    container = make_container(database_url, inventory_url=inventory.url)
    container.tracer_provider.override(providers.Object(provider))
    return container


@pytest.fixture(scope="module")
async def traced_app(
    database_url: str, inventory: FakeInventory, provider: TracerProvider
) -> AsyncIterator[Any]:
    app = create_app(traced_container(database_url, inventory, provider))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


@pytest.fixture
async def http(
    traced_app: Any, exporter: InMemorySpanExporter, inventory: FakeInventory
) -> AsyncIterator[httpx.AsyncClient]:
    inventory.reset()
    transport = httpx.ASGITransport(app=traced_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carpool.test", headers=AUTH
    ) as client:
        yield client


def spans_of(exporter: InMemorySpanExporter, root: ReadableSpan) -> list[ReadableSpan]:
    """The spans of `root`'s trace, `root` first."""
    trace_id = root.context.trace_id
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def int_attribute(span: ReadableSpan, name: str) -> int:
    """The span's attribute `name`, which must be an int."""
    value = (span.attributes or {}).get(name)
    assert isinstance(value, int), (name, value)
    return value


def server_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [
        s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER and s.name == name
    ]
    return span


async def test_a_request_is_one_server_span_named_by_route_with_sql_children(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    made = await create_grommet(http, "M6")
    exporter.clear()
    response = await http.get(f"/grommets/{made['id']}", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 200
    root = server_span(exporter, "GET /grommets/{grommet_id}")
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes["http.route"] == "/grommets/{grommet_id}"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["carpool.request_id"] == "r-1"
    sql = children(spans_of(exporter, root), root)
    assert [s.name for s in sql] == ["SELECT"]
    assert sql[0].kind is SpanKind.CLIENT
    assert sql[0].attributes is not None
    assert "FROM grommets" in str(sql[0].attributes["db.query.text"])


async def test_a_request_joins_the_callers_trace(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    response = await http.get("/grommets", headers={"traceparent": CALLER_TRACEPARENT})
    assert response.status_code == 200
    root = server_span(exporter, "GET /grommets")
    assert format(root.context.trace_id, "032x") == CALLER_TRACE_ID
    assert root.parent is not None and format(root.parent.span_id, "016x") == "b7ad6b7169203331"


async def test_an_unrouted_request_is_named_by_method_not_by_path(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    assert (await http.get("/no/such/thing/123")).status_code == 404
    (root,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert root.name == "GET"
    assert root.attributes is not None
    assert root.attributes["http.response.status_code"] == 404


async def test_each_batch_item_is_a_child_span_of_the_batch(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    g = await create_grommet(http, "M6")
    w = await create_widget(http, "hinge", [{"grommet_id": g["id"], "quantity": 1}])
    exporter.clear()
    load = [f"/grommets/{g['id']}", f"/widgets/{w['id']}", "/grommets/999"]
    response = await http.post("/batch", json={"load": load})
    assert response.status_code == 200
    root = server_span(exporter, "POST /batch")
    spans = spans_of(exporter, root)
    items = children(spans, root)
    assert sorted(s.name for s in items) == [
        "GET /grommets/{grommet_id}",
        "GET /grommets/{grommet_id}",
        "GET /widgets/{widget_id}",
    ]
    assert all(s.kind is SpanKind.INTERNAL for s in items)
    statuses = sorted(int_attribute(s, "http.response.status_code") for s in items)
    assert statuses == [200, 200, 404]
    # Every SQL statement belongs to the batch's trace, under one of its items.
    item_ids = {s.context.span_id for s in items}
    sql = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert sql and all(s.parent is not None and s.parent.span_id in item_ids for s in sql)


async def test_inventory_calls_are_client_spans_and_carry_traceparent(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter, inventory: FakeInventory
) -> None:
    g = await create_grommet(http, "M6")
    w = await create_widget(http, "hinge", [{"grommet_id": g["id"], "quantity": 2}])
    inventory.stock[g["id"]] = 9
    exporter.clear()
    response = await http.get(f"/widgets/{w['id']}/availability")
    assert response.json()["buildable"] == 4
    root = server_span(exporter, "GET /widgets/{widget_id}/availability")
    calls = [
        s
        for s in children(spans_of(exporter, root), root)
        if s.kind is SpanKind.CLIENT and s.attributes and "db.query.text" not in s.attributes
    ]
    assert len(calls) == 1
    (seen,) = inventory.seen
    _version, trace_id, parent_id, _flags = seen["traceparent"].split("-")
    assert trace_id == format(root.context.trace_id, "032x")
    assert parent_id == format(calls[0].context.span_id, "016x")


async def test_each_websocket_frame_is_a_child_span_of_the_socket(
    database_url: str,
    inventory: FakeInventory,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    app = create_app(traced_container(database_url, inventory, provider))
    async with serving(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", headers=AUTH) as client:
            g = await create_grommet(client, "M6")
        exporter.clear()
        async with connect(f"ws://{address}/ws", additional_headers=AUTH) as ws:
            for frame_id, path in (("1", f"/grommets/{g['id']}"), ("2", "/widgets")):
                await ws.send(orjson.dumps({"id": frame_id, "path": path}).decode())
            answers = [orjson.loads(await ws.recv()) for _ in range(2)]
        assert sorted(a["status"] for a in answers) == [200, 200]
    root = server_span(exporter, "GET /ws")
    frames = children(spans_of(exporter, root), root)
    assert sorted(s.name for s in frames) == ["GET /grommets/{grommet_id}", "GET /widgets"]
    assert all(s.attributes and s.attributes["carpool.parent_route"] == "/ws" for s in frames)


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    assert make_tracer_provider("none") is None
    assert make_tracer_provider("") is None
    assert make_tracer_provider("console", disabled=True) is None


def test_a_named_exporter_turns_tracing_on() -> None:
    provider = make_tracer_provider("console")
    assert isinstance(provider, TracerProvider)
    try:
        processors = provider._active_span_processor._span_processors  # the SDK keeps them here
        assert [type(p.span_exporter) for p in processors] == [ConsoleSpanExporter]  # type: ignore[attr-defined]
        assert provider.resource.attributes["service.name"] == "carpool"
    finally:
        provider.shutdown()


def test_otel_service_name_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "carpool-eu")
    provider = make_tracer_provider("otlp")
    assert provider is not None
    try:
        assert provider.resource.attributes["service.name"] == "carpool-eu"
    finally:
        provider.shutdown()


def test_an_unknown_exporter_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_EXPORTER"):
        load_settings()
    assert Settings(otel_traces_exporter=" OTLP , console").otel_traces_exporter == "otlp,console"


async def test_spans_name_the_caller_never_their_token(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    await http.post("/batch", json={"load": ["/grommets"]})
    spans = exporter.get_finished_spans()
    callers = {
        (s.attributes or {}).get("enduser.id") for s in spans if s.kind is not SpanKind.CLIENT
    }
    assert "tester" in callers
    secret = AUTH["authorization"].split()[1]
    assert all(secret not in str(dict(s.attributes or {})) for s in spans)
