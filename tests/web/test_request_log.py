"""JSON log lines per request and per batch item, and the `X-Request-ID` they carry."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from tests.helpers import create_grommet

GENERATED = re.compile(r"[0-9a-f]{32}")


def lines(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "carpool.requests" and r.message == message]


async def test_a_client_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    made = await create_grommet(client, "M6")
    caplog.clear()
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


async def test_without_a_request_id_one_is_made_and_returned(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="carpool.requests"):
        first = await client.get("/grommets/1")
        second = await client.get("/grommets/1")
    assert first.status_code == 404
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED.fullmatch(i) for i in ids) and ids[0] != ids[1]
    assert [r.request_id for r in lines(caplog, "request")] == ids  # type: ignore[attr-defined]


@pytest.mark.parametrize("given", [b"has spaces", b"x" * 129, b"semi;colon", "ü".encode()])
async def test_an_unfit_request_id_is_replaced_not_echoed(
    client: httpx.AsyncClient, given: bytes
) -> None:
    response = await client.get("/health", headers={"X-Request-ID": given})
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


async def test_every_batch_item_has_its_own_line_with_the_batch_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    made = await create_grommet(client, "M6")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="carpool.requests"):
        response = await client.post(
            "/batch",
            json={"load": [f"/grommets/{made['id']}", "/grommets/999", "/widgets"]},
            headers={"X-Request-ID": "batch-7"},
        )
    assert response.headers["x-request-id"] == "batch-7"
    items = lines(caplog, "subrequest")
    assert sorted((r.route, r.status) for r in items) == [  # type: ignore[attr-defined]
        ("/grommets/{grommet_id}", 200),
        ("/grommets/{grommet_id}", 404),
        ("/widgets", 200),
    ]
    assert {r.request_id for r in items} == {"batch-7"}  # type: ignore[attr-defined]
    assert {r.parent_route for r in items} == {"/batch"}  # type: ignore[attr-defined]
    (outer,) = lines(caplog, "request")
    assert (outer.route, outer.status, outer.request_id) == ("/batch", 200, "batch-7")  # type: ignore[attr-defined]


async def test_log_lines_are_json_objects(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
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
