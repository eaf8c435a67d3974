"""Hostile use of sockets and live answers against a real uvicorn with `make run`'s limits:
a subscriber that never reads, unpaid subscriptions, a flood of token-less sockets, a huge
header, a keyed atomic batch whose item fails."""

from __future__ import annotations

import asyncio
import base64
import os
import shlex
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.e2e.live_server import ROOT, LiveServer, live_server
from tests.faults import tally
from tests.helpers import token

PENDING_BYTES = 1 << 20
RATE = 100
PAGE = "/widgets?include=grommets&limit=500"


def make_run_limits() -> list[str]:
    """The uvicorn flags `make run` serves with (the Makefile's UVICORN_LIMITS)."""
    printed = subprocess.run(
        ["make", "-s", "--eval", "print-limits: ; @echo $(UVICORN_LIMITS)", "print-limits"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "FORWARDED_ALLOW_IPS": ""},
    )
    return shlex.split(printed.stdout)


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    env = {
        "DATABASE_URL": database_url,
        "RATE_LIMIT": f"{RATE}/minute",
        "WS_AUTH_TIMEOUT_S": "1",
        "WS_MAX_PENDING_BYTES": str(PENDING_BYTES),
    }
    async with live_server("asgi:app", env, args=make_run_limits()) as live:
        yield live
    assert "Traceback" not in live.log(), live.log()


def _bearer(sub: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(sub=sub)}"}


def _grommet(name: str) -> dict[str, Any]:
    return {"name": name, "material": "steel", "diameter_mm": 3}


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


async def _seed_page(http: httpx.AsyncClient, *, grommets: int, widgets: int) -> int:
    """Widgets of `grommets` parts each: the page PAGE answers, and its size in bytes."""
    ids: list[int] = []
    for start in range(0, grommets, 50):
        items = [
            {"method": "POST", "path": "/grommets", "body": _grommet(f"page-{n}")}
            for n in range(start, min(start + 50, grommets))
        ]
        seeder = _bearer(f"seeder-{start}")  # a budget per batch (RATE_LIMIT)
        answer = await http.post(
            "/batch", json={"atomic": False, "requests": items}, headers=seeder
        )
        ids += [item["body"]["id"] for item in answer.json()["responses"]]
    parts = [{"grommet_id": g, "quantity": 1} for g in ids]
    items = [
        {"method": "POST", "path": "/widgets", "body": {"name": f"page-w{n}", "parts": parts}}
        for n in range(widgets)
    ]
    assert (await http.post("/batch", json={"atomic": False, "requests": items})).status_code == 200
    return len((await http.get(PAGE)).content)


async def _non_reader(port: int, headers: dict[str, str]) -> tuple[asyncio.StreamReader, Any]:
    """A socket whose client, after the handshake, reads nothing (a tiny receive buffer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 26)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{head}\r\n"
        ).encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in response, response
    return reader, writer


def _masked_text(text: str) -> bytes:
    data, mask = text.encode(), os.urandom(4)
    size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0xFE]) + len(data).to_bytes(2)
    return b"\x81" + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def test_a_subscriber_that_never_reads_holds_at_most_its_budget(server: LiveServer) -> None:
    headers = _bearer("non-reader")
    async with httpx.AsyncClient(base_url=server.http_url, headers=_bearer("seeder")) as http:
        page_bytes = await _seed_page(http, grommets=250, widgets=12)
    assert PENDING_BYTES // 2 < page_bytes < PENDING_BYTES, page_bytes
    before = _rss_mb(server.process.pid)
    sockets = [await _non_reader(server.port, headers) for _ in range(3)]
    for _, writer in sockets:
        for n in range(40):
            frame = {"type": "subscribe", "id": f"s{n}", "path": PAGE}
            writer.write(_masked_text(orjson.dumps(frame).decode()))
    await asyncio.sleep(4)
    held = _rss_mb(server.process.pid) - before
    # 120 subscriptions of the page would pin 120 pages; the budget holds about one a socket.
    assert held < 3 * page_bytes / 2**20 + 40, f"held {held:.0f} MB"
    for _, writer in sockets:
        writer.close()
    tally.record(non_reader_held_mb=round(held), non_reader_page_kb=page_bytes // 1024)


async def test_a_subscribe_past_the_budget_is_a_429_update_with_retry_after(
    server: LiveServer,
) -> None:
    headers = _bearer("spent")
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        while (await http.get("/grommets?limit=1")).status_code != 429:
            pass
    async with connect(server.ws_url, additional_headers=headers) as ws:
        statuses = []
        for n in range(20):
            frame = {"type": "subscribe", "id": f"s{n}", "path": "/grommets"}
            await ws.send(orjson.dumps(frame).decode())
            update = orjson.loads(await ws.recv())
            statuses.append(update["status"])
            assert update["ended"] is True and int(update["headers"]["retry-after"]) >= 1
    assert statuses == [429] * 20
    tally.record(unpaid_subscribes_refused=len(statuses))


async def test_a_flood_of_token_less_sockets_leaves_http_answering(server: LiveServer) -> None:
    opened: list[ClientConnection] = []
    refused = 0

    async def one() -> None:
        nonlocal refused
        try:
            opened.append(await connect(server.ws_url, open_timeout=30, ping_interval=None))
        except InvalidStatus as exc:
            assert exc.response.status_code == 429
            refused += 1

    await asyncio.gather(*(one() for _ in range(1000)))
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.get("/health")).status_code == 200
    codes = []
    for ws in opened:
        await asyncio.wait_for(ws.wait_closed(), 10)  # WS_AUTH_TIMEOUT_S=1: closed, 4401
        codes.append(ws.close_code)
    assert len(opened) == 16 and refused == 984
    assert set(codes) == {4401}
    assert server.log().count("handshake refused") <= 21, "refusals are logged rate-limited"
    tally.record(token_less_refused=refused, token_less_closed_4401=len(codes))


async def _send_head(port: int, size: int) -> tuple[bytes, int]:
    """A GET whose Authorization header is `size` bytes: the answer's first bytes, and how
    many bytes of the header got out before the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /grommets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
    sent = 0
    try:
        while sent < size:
            writer.write(b"a" * min(1 << 20, size - sent))
            await writer.drain()
            sent += min(1 << 20, size - sent)
        writer.write(b"\r\n\r\n")
        answer = await reader.read(200)
    except ConnectionError:
        answer = b""
    writer.close()
    return answer, sent


async def test_a_head_past_16_kib_is_431_and_a_large_body_is_not(server: LiveServer) -> None:
    answer, _ = await _send_head(server.port, 20_000)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert b"header-too-large" in answer or b"application/problem+json" in answer
    before = _rss_mb(server.process.pid)
    _, sent = await _send_head(server.port, 64 << 20)
    assert sent < 64 << 20, "the server stopped reading long before 64 MB"
    assert _rss_mb(server.process.pid) - before < 16
    async with httpx.AsyncClient(base_url=server.http_url, headers=_bearer("big")) as http:
        padded = await http.get("/grommets", headers={"x-pad": "p" * 8000})
        assert padded.status_code == 200
        body = {"name": "n" * 100, "material": "m" * 300_000, "diameter_mm": 3}
        large = await http.post("/grommets", json=body)
        assert large.status_code == 422  # read and judged by the app, not refused as a header
    tally.record(header_431=1)


async def test_a_keyed_atomic_batch_whose_item_fails_answers_200_on_every_retry(
    server: LiveServer,
) -> None:
    item = {"method": "POST", "path": "/grommets", "body": _grommet("twice")}
    envelope = {"atomic": True, "requests": [item, item]}
    headers = {**_bearer("keyed"), "idempotency-key": '"atomic-1"'}
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        answers = [await http.post("/batch", json=envelope) for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["committed"] is False
        assert [i["status"] for i in answer.json()["responses"]] == [201, 409]
    tally.record(keyed_atomic_batch_200=len(answers))
