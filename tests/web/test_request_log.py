"""JSON log lines per request, batch and frame, and the `X-Request-ID` they carry.

The request log is written as bytes by `logs.LINES`; a handler listening on the logger
(pytest's `caplog` here) gets a record per line too. Both are checked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from carpool.observability import logs
from tests.conftest import make_container
from tests.helpers import AUTH, create_app, create_grommet, served
from tests.websocket_support import AsgiSocket

GENERATED = re.compile(r"[0-9a-f]{32}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def lines(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "carpool.requests" and r.message == message]


class Written:
    """What `logs.LINES` wrote while the test ran, as the bytes and as parsed lines."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.chunks.append(data)

    def clear(self) -> None:
        logs.LINES.flush()
        self.chunks.clear()

    def lines(self, message: str | None = None) -> list[dict[str, Any]]:
        logs.LINES.flush()
        raw = b"".join(self.chunks)
        assert raw.endswith(b"\n") or not raw
        parsed = [orjson.loads(line) for line in raw.splitlines()]
        assert all(p["logger"] == "carpool.requests" for p in parsed)
        return [p for p in parsed if message is None or p["message"] == message]


@pytest.fixture
def written() -> Iterator[Written]:
    logs.LINES.flush()
    saved, capture = logs.LINES.sink, Written()
    logs.LINES.sink = capture
    try:
        yield capture
    finally:
        logs.LINES.flush()
        logs.LINES.sink = saved


async def test_a_client_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, written: Written
) -> None:
    made = await create_grommet(client, "M6")
    caplog.clear()
    written.clear()
    with caplog.at_level(logging.INFO, logger="carpool.requests"):
        response = await client.get(f"/grommets/{made['id']}", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    (record,) = lines(caplog, "request")
    assert record.request_id == "abc-123"  # type: ignore[attr-defined]
    assert record.method == "GET"  # type: ignore[attr-defined]
    assert record.route == "/grommets/{grommet_id}"  # type: ignore[attr-defined]
    assert record.path == f"/grommets/{made['id']}"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.db_queries == 1  # type: ignore[attr-defined]
    assert record.duration_ms > 0  # type: ignore[attr-defined]
    (line,) = written.lines("request")
    assert {key: line[key] for key in ("request_id", "method", "route", "path", "status")} == {
        "request_id": "abc-123",
        "method": "GET",
        "route": "/grommets/{grommet_id}",
        "path": f"/grommets/{made['id']}",
        "status": 200,
    }
    assert line["sub"] == "tester" and line["db_queries"] == 1
    assert line["duration_ms"] == record.duration_ms  # type: ignore[attr-defined]
    assert (line["level"], line["logger"]) == ("INFO", "carpool.requests")
    assert TIME.fullmatch(line["time"])


async def test_without_a_request_id_one_is_made_and_returned(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, written: Written
) -> None:
    with caplog.at_level(logging.INFO, logger="carpool.requests"):
        first = await client.get("/grommets/1")
        second = await client.get("/grommets/1")
    assert first.status_code == 404
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED.fullmatch(i) for i in ids) and ids[0] != ids[1]
    assert [r.request_id for r in lines(caplog, "request")] == ids  # type: ignore[attr-defined]
    assert [line["request_id"] for line in written.lines("request")] == ids


@pytest.mark.parametrize("given", [b"has spaces", b"x" * 129, b"semi;colon", "ü".encode()])
async def test_an_unfit_request_id_is_replaced_not_echoed(
    client: httpx.AsyncClient, given: bytes
) -> None:
    response = await client.get("/health", headers=[(b"X-Request-ID", given)])
    assert GENERATED.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("DELETE", "/health", 405), ("POST", "/grommets", 415)],
)
async def test_error_answers_carry_the_request_id_too(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers={"X-Request-ID": "err-1"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "err-1"


BATCH = {"load": ["/grommets/{id}", "/grommets/999", "/widgets"]}
ITEMS = [("/grommets/{grommet_id}", 200), ("/grommets/{grommet_id}", 404), ("/widgets", 200)]


def _batch(grommet_id: int) -> dict[str, Any]:
    return {"load": [path.replace("{id}", str(grommet_id)) for path in BATCH["load"]]}


async def test_a_batch_line_lists_every_item_with_the_batch_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, written: Written
) -> None:
    made = await create_grommet(client, "M6")
    caplog.clear()
    written.clear()
    with caplog.at_level(logging.INFO, logger="carpool.requests"):
        response = await client.post(
            "/batch", json=_batch(made["id"]), headers={"X-Request-ID": "batch-7"}
        )
    assert response.headers["x-request-id"] == "batch-7"
    (outer,) = lines(caplog, "request")
    assert (outer.route, outer.status, outer.request_id) == ("/batch", 200, "batch-7")  # type: ignore[attr-defined]
    (line,) = written.lines()  # one line for the batch and its items (REQUEST_LOG_ITEMS off)
    assert (line["message"], line["route"], line["status"]) == ("request", "/batch", 200)
    assert (line["request_id"], line["sub"], line["db_queries"]) == ("batch-7", "tester", 2)
    items = line["items"]  # in the order they were answered
    assert sorted((item["route"], item["status"]) for item in items) == ITEMS
    assert sorted(item["path"] for item in items) == [
        f"/grommets/{made['id']}",
        "/grommets/999",
        "/widgets",
    ]
    assert {item["method"] for item in items} == {"GET"}
    assert all(0 < item["duration_ms"] <= line["duration_ms"] for item in items)
    assert outer.items == items  # type: ignore[attr-defined]


async def test_refused_items_are_listed_too(client: httpx.AsyncClient, written: Written) -> None:
    nested = {"load": ["/grommets", "/batch", "/grommets#x"]}
    assert (await client.post("/batch", json=nested)).status_code == 200
    (line,) = written.lines("request")
    noted = sorted((item["path"], item["route"], item["status"]) for item in line["items"])
    assert noted == [
        ("/batch", None, 400),  # refused: not composable
        ("/grommets", "/grommets", 200),
        ("/grommets#x", None, 400),  # refused before routing: a fragment
    ]


async def test_with_request_log_items_every_item_has_its_own_line_too(
    database_url: str, caplog: pytest.LogCaptureFixture, written: Written
) -> None:
    app = create_app(make_container(database_url, request_log_items=True))
    async with served(app, headers={"x-request-id": "batch-8", **AUTH}) as http:
        made = await create_grommet(http, "M7")
        written.clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="carpool.requests"):
            assert (await http.post("/batch", json=_batch(made["id"]))).status_code == 200
    items = written.lines("subrequest")
    assert sorted((item["route"], item["status"]) for item in items) == ITEMS
    assert {item["request_id"] for item in items} == {"batch-8"}
    assert {item["parent_route"] for item in items} == {"/batch"}
    assert {item["sub"] for item in items} == {"tester"}
    (outer,) = written.lines("request")
    assert (outer["route"], outer["status"], len(outer["items"])) == ("/batch", 200, 3)
    records = lines(caplog, "subrequest")
    assert sorted((r.route, r.status) for r in records) == ITEMS  # type: ignore[attr-defined]
    assert {r.parent_route for r in records} == {"/batch"}  # type: ignore[attr-defined]


async def test_a_request_frame_has_its_line_and_a_batch_frame_one_for_all_its_items(
    app: Any, client: httpx.AsyncClient, written: Written
) -> None:
    made = await create_grommet(client, "M8")
    written.clear()
    socket = await AsgiSocket(app).open()  # its handshake's X-Request-ID: "outer"
    try:
        socket.send({"id": "f1", "method": "GET", "path": f"/grommets/{made['id']}"})
        assert (await socket.answer())["status"] == 200
        socket.send({"id": "f2", "batch": _batch(made["id"])})
        assert (await socket.answer())["status"] == 200
    finally:
        socket.leave()
        await socket.ended()
    frame, batch = written.lines("subrequest")
    assert (frame["method"], frame["route"], frame["path"], frame["status"]) == (
        "GET",
        "/grommets/{grommet_id}",
        f"/grommets/{made['id']}",
        200,
    )
    assert (frame["parent_route"], frame["request_id"], frame["db_queries"]) == ("/ws", "outer", 1)
    assert "items" not in frame
    assert (batch["method"], batch["route"], batch["status"]) == ("POST", "/batch", 200)
    assert (batch["parent_route"], batch["request_id"], batch["sub"]) == ("/ws", "outer", "tester")
    assert sorted((item["route"], item["status"]) for item in batch["items"]) == ITEMS


async def test_log_lines_are_json_objects(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, written: Written
) -> None:
    with caplog.at_level(logging.INFO, logger="carpool.requests"):
        await client.get("/grommets", headers={"X-Request-ID": "json-1"})
    (record,) = lines(caplog, "request")
    (handler,) = [
        h for h in logging.getLogger("carpool").handlers if h.get_name() == "carpool-json"
    ]
    assert handler.formatter is not None
    line = json.loads(handler.formatter.format(record))
    assert line["level"] == "INFO"
    assert line["logger"] == "carpool.requests"
    assert line["message"] == "request"
    assert line["request_id"] == "json-1"
    assert line["route"] == "/grommets"
    assert {"time", "method", "status", "duration_ms", "db_queries"} <= set(line)
    # The line carpool wrote itself, byte for byte one JSON object and a newline.
    logs.LINES.flush()
    (raw,) = written.chunks
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")
    own = json.loads(raw)
    assert list(own)[:3] == ["level", "logger", "message"] and list(own)[-1] == "time"
    assert {key: own[key] for key in line if key not in {"time", "carpool_written"}} == {
        key: line[key] for key in line if key not in {"time", "carpool_written"}
    }
    # carpool's own handler does not write a second copy of it.
    assert not handler.filter(record)


async def test_lines_go_out_together_soon_after_the_first(written: Written) -> None:
    for n in range(3):
        logs.write_line("request", {"n": n})
    assert written.chunks == []  # not yet: nothing is written on the call's path
    await asyncio.sleep(logs.LINES.delay_s * 4)
    assert len(written.chunks) == 1  # one write for the three
    assert [line["n"] for line in written.lines()] == [0, 1, 2]


async def test_many_lines_go_out_without_waiting(written: Written) -> None:
    writer = logs.LineWriter(written, delay_s=3600, most=4)
    for n in range(9):
        writer.write(b'{"logger":"carpool.requests","n":%d}\n' % n)
    assert [len(chunk.splitlines()) for chunk in written.chunks] == [4, 4]
    writer.flush()
    assert [line["n"] for line in written.lines()] == list(range(9))


async def test_nothing_but_the_line_is_made_when_nobody_else_listens(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, written: Written
) -> None:
    requests_log = logging.getLogger("carpool.requests")
    requests_log.propagate = False  # as in service: no handler but carpool's own
    try:
        with caplog.at_level(logging.INFO, logger="carpool.requests"):
            await client.get("/grommets", headers={"X-Request-ID": "quiet-1"})
    finally:
        requests_log.propagate = True
    assert lines(caplog, "request") == []
    assert [line["request_id"] for line in written.lines("request")] == ["quiet-1"]


async def test_a_sink_that_fails_loses_lines_never_calls(
    client: httpx.AsyncClient, written: Written, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(data: bytes) -> None:
        raise OSError("disk full")

    logs.LINES.sink = broken
    first = await client.get("/grommets")
    second = await client.get("/grommets")
    logs.LINES.flush()
    assert (first.status_code, second.status_code) == (200, 200)
    logs.LINES.sink = written
    assert (await client.get("/grommets")).status_code == 200
    assert len(written.lines("request")) == 1


async def test_no_line_below_info(database_url: str, written: Written) -> None:
    app = create_app(make_container(database_url, log_level="WARNING"))
    try:
        async with served(app, headers=AUTH) as http:
            assert (await http.get("/grommets")).status_code == 200
            assert (await http.post("/batch", json={"load": ["/grommets"]})).status_code == 200
    finally:
        logs.configure_logging("INFO")  # the level is the process's: as the other apps want it
    assert written.lines() == []


DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


async def test_the_documented_lines_have_the_fields_written(
    client: httpx.AsyncClient, written: Written
) -> None:
    section = DOCS.read_text().split("### The request log", 1)[1].split("## Tracing", 1)[0]
    single, batch = (json.loads(block.split("```", 1)[0]) for block in section.split("```json")[1:])
    await client.get("/grommets")
    await client.post("/batch", json={"load": ["/grommets"]})
    got_single, got_batch = written.lines("request")
    assert set(single) == set(got_single)
    assert set(batch) == set(got_batch)
    assert {key for item in batch["items"] for key in item} == set(got_batch["items"][0])


async def test_with_tracing_on_a_line_names_its_trace_and_without_it_none(
    database_url: str, client: httpx.AsyncClient, written: Written
) -> None:
    from dependency_injector import providers
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    container = make_container(database_url)
    container.tracer_provider.override(providers.Object(provider))
    async with served(create_app(container), headers=AUTH) as http:
        await http.get("/grommets")
    (traced,) = written.lines("request")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "GET /grommets"]
    assert traced["trace_id"] == format(span.context.trace_id, "032x")
    assert traced["span_id"] == format(span.context.span_id, "016x")
    written.clear()
    await client.get("/grommets")  # the session app: tracing off
    (untraced,) = written.lines("request")
    assert "trace_id" not in untraced and "span_id" not in untraced
