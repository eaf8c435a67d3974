"""`/ws` end to end: a real uvicorn process on 127.0.0.1 and the `websockets` client."""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import count
from tests.e2e.live_server import ROOT, LiveServer, checked_server, live_server
from tests.helpers import AUTH, create_grommet, create_widget, token
from tests.websocket_support import lingering_work, slow_write_batch, wait_for_sleeper

APP = "tests.e2e.probe_asgi:app"


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    """The app (with probe routes) under uvicorn, default limits."""
    async with checked_server(APP, database_url) as live:
        yield live


@pytest.fixture(scope="module")
async def tight_server(database_url: str) -> AsyncIterator[LiveServer]:
    """The same, allowing 2 frames in flight and frames of at most 4096 bytes."""
    env = {"DATABASE_URL": database_url, "WS_MAX_IN_FLIGHT": "2", "WS_MAX_FRAME_BYTES": "4096"}
    async with live_server(APP, env) as live:
        yield live
    assert "Traceback" not in live.log(), live.log()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as client:
        yield client


async def answers(ws: ClientConnection, n: int, *, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The next `n` frames, decoded, with the raw text under "_raw"."""
    out = []
    async with asyncio.timeout(timeout):
        for _ in range(n):
            raw = await ws.recv()
            assert isinstance(raw, str), "answers are text frames"
            out.append({**orjson.loads(raw), "_raw": raw.encode()})
    return out


async def ask(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(frame).decode())
    (answer,) = await answers(ws, 1)
    return answer


async def seed(http: httpx.AsyncClient) -> tuple[list[int], list[int]]:
    """Grommets g0 to g3, and widgets w0 and w1 each made of one of them and of g3."""
    grommets = [(await create_grommet(http, f"g{i}", 2 + i))["id"] for i in range(4)]
    widgets = []
    for i in range(2):
        parts = [
            {"grommet_id": grommets[i], "quantity": 2},
            {"grommet_id": grommets[3], "quantity": 1},
        ]
        widgets.append((await create_widget(http, f"w{i}", parts))["id"])
    return grommets, widgets


async def test_200_interleaved_frames_are_each_answered_once_with_the_http_bytes(
    server: LiveServer, http: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    grommets, widgets = await seed(http)
    requests: list[tuple[str, str, Any]] = [
        *(("GET", f"/grommets/{g}", None) for g in grommets),
        *(("GET", f"/widgets/{w}?include=grommets", None) for w in widgets),
        ("GET", f"/widgets/{widgets[0]}", None),
        ("GET", "/grommets?limit=2", None),
        ("GET", "/widgets", None),
        ("GET", "/grommets/999999", None),
        ("GET", "/nowhere", None),
        ("GET", "/grommets?limit=0", None),
        ("POST", "/grommets", {"name": "", "material": 3}),
        ("PATCH", f"/widgets/{widgets[0]}", {"name": 5}),
        ("DELETE", f"/grommets/{grommets[3]}", None),
        ("PUT", "/grommets", None),
    ]
    expected = {}
    for method, path, body in requests:
        response = await http.request(method, path, json=body)
        expected[(method, path)] = (response.status_code, response.content)
    assert {status for status, _ in expected.values()} >= {200, 404, 405, 409, 422}

    frames = {f"f{n}": request for n, request in zip(range(200), itertools.cycle(requests))}
    async with connect(server.ws_url, additional_headers=AUTH) as ws:
        for frame_id, (method, path, body) in frames.items():
            frame: dict[str, Any] = {"id": frame_id, "method": method, "path": path}
            if body is not None:
                frame["body"] = body
            await ws.send(orjson.dumps(frame).decode())
        received = await answers(ws, 200)

    ids = [answer["id"] for answer in received]
    assert sorted(ids) == sorted(frames), "every frame answered exactly once"
    for answer in received:
        method, path, _ = frames[answer["id"]]
        status, body_bytes = expected[(method, path)]
        assert answer["status"] == status
        assert answer["_raw"].endswith(b',"body":' + (body_bytes or b"null") + b"}")
    assert await count(admin_engine, "grommets") == 4, "failed writes left nothing behind"


async def test_a_write_frame_commits_and_a_failed_one_changes_nothing(
    server: LiveServer, http: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    grommet = {"name": "M5", "material": "brass", "diameter_mm": 5}
    async with connect(server.ws_url, additional_headers=AUTH) as ws:
        created = await ask(ws, {"id": "c", "method": "POST", "path": "/grommets", "body": grommet})
        again = await ask(ws, {"id": "d", "method": "post", "path": "/grommets", "body": grommet})

    assert created["status"] == 201
    location = created["headers"]["location"]
    single = await http.get(location)
    assert created["_raw"].endswith(b',"body":' + single.content + b"}")
    assert again["status"] == 409 and again["body"]["type"] == "urn:carpool:problem:conflict"
    assert await count(admin_engine, "grommets") == 1


async def test_a_batch_frame_is_answered_with_the_batch_document(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    grommets, _ = await seed(http)
    batch = {"load": [f"/grommets/{grommets[0]}", "/grommets/999999"]}
    async with connect(server.ws_url, additional_headers=AUTH) as ws:
        answer = await ask(ws, {"id": "b", "batch": batch})
        invalid = await ask(ws, {"id": "e", "batch": {"requests": []}})

    over_http = await http.post("/batch", json=batch)
    assert answer["status"] == 200
    assert answer["_raw"] == b'{"id":"b","status":200,"body":' + over_http.content + b"}"
    assert invalid["id"] == "e" and invalid["status"] == 422
    assert invalid["body"]["type"] == "urn:carpool:problem:validation"


async def test_frames_carry_the_identity_and_headers_of_the_socket(server: LiveServer) -> None:
    identity = {**AUTH, "X-Tenant": "acme"}
    async with connect(server.ws_url, additional_headers=identity) as ws:
        echoed = await ask(
            ws, {"id": "h", "path": "/_probe/ws/headers", "headers": {"X-Frame": "1"}}
        )
        refused = await ask(
            ws, {"id": "a", "path": "/_probe/ws/headers", "headers": {"Cookie": "session=x"}}
        )

    assert echoed["status"] == 200
    seen = echoed["body"]
    assert (seen["authorization"], seen["x-tenant"], seen["x-frame"]) == (
        AUTH["authorization"],
        "acme",
        "1",
    )
    assert refused["status"] == 400


async def test_a_slow_frame_does_not_hold_up_fast_ones(server: LiveServer) -> None:
    async with connect(server.ws_url, additional_headers=AUTH) as ws:
        await ws.send(orjson.dumps({"id": "slow", "path": "/_probe/sleep?s=1.5"}).decode())
        for n in range(20):
            await ws.send(orjson.dumps({"id": f"fast{n}", "path": "/grommets?limit=1"}).decode())
        started = asyncio.get_running_loop().time()
        received = await answers(ws, 21)
        order = [answer["id"] for answer in received]

    assert order[-1] == "slow"
    assert all(answer["status"] == 200 for answer in received)
    assert asyncio.get_running_loop().time() - started >= 1.4


async def test_past_the_in_flight_limit_the_server_waits_instead_of_refusing(
    tight_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=tight_server.http_url, headers=AUTH) as http:
        await http.post("/_probe/ws/reset")
        async with connect(tight_server.ws_url, additional_headers=AUTH) as ws:
            for n in range(50):
                frame = {"id": str(n), "path": "/_probe/ws/busy?s=0.02"}
                await ws.send(orjson.dumps(frame).decode())
            received = await answers(ws, 50)
        most = (await http.get("/_probe/ws/most")).json()

    assert sorted(int(answer["id"]) for answer in received) == list(range(50))
    assert all(answer["status"] == 200 for answer in received)
    assert most["most"] == 2, "two at a time: never more, and the limit is actually used"


BAD_FRAMES: list[tuple[str | bytes, str | None, str | None]] = [
    # (frame, the id the error frame carries, a JSON pointer its problem names)
    ("{not json", None, None),
    ("[1, 2]", None, None),
    ('"a string"', None, None),
    ('{"path": "/grommets"}', None, "/id"),
    ('{"id": 7, "path": "/grommets"}', None, "/id"),
    ('{"id": "", "path": "/grommets"}', "", "/id"),
    ('{"id": "p"}', "p", "/path"),
    ('{"id": "r", "path": "grommets"}', "r", "/path"),
    ('{"id": "u", "path": "/grommets", "verb": "GET"}', "u", "/verb"),
    ('{"id": "m", "method": "BREW", "path": "/grommets"}', "m", "/method"),
    ('{"id": "h", "path": "/grommets", "headers": {"x": 1}}', "h", "/headers/x"),
    ('{"id": "x", "path": "/grommets", "batch": {"load": ["/grommets"]}}', "x", "/path"),
    (b'{"id": "bin", "path": "/grommets"}', None, None),
]
REFUSED = [
    '{"id": "ws", "path": "/ws"}',
    '{"id": "ws2", "path": "/./ws"}',
    '{"id": "nested", "method": "POST", "path": "//batch", "body": {"load": ["/grommets"]}}',
    '{"id": "auth", "path": "/grommets", "headers": {"Authorization": "Bearer x"}}',
]


async def test_every_bad_frame_gets_an_error_frame_and_the_socket_stays_open(
    server: LiveServer,
) -> None:
    async with connect(server.ws_url, additional_headers=AUTH) as ws:
        for frame, frame_id, pointer in BAD_FRAMES:
            await ws.send(frame)
            (answer,) = await answers(ws, 1)
            assert set(answer) == {"id", "status", "body", "_raw"}, frame
            assert (answer["id"], answer["status"]) == (frame_id, 400), frame
            problem = answer["body"]
            assert problem["type"] == "urn:carpool:problem:bad-frame"
            assert problem["status"] == 400 and problem["detail"]
            if pointer is not None:
                assert pointer in {error.get("pointer") for error in problem["errors"]}, frame
        for frame in REFUSED:
            await ws.send(frame)
            (answer,) = await answers(ws, 1)
            assert answer["id"] == orjson.loads(frame)["id"] and answer["status"] == 400
            assert answer["body"]["type"] == "urn:carpool:problem:refused-item"
        good = await ask(ws, {"id": "ok", "path": "/grommets"})

    assert good["status"] == 200 and good["body"] == {"items": [], "next": None}


async def test_a_frame_over_the_size_limit_closes_the_socket_with_1009(
    tight_server: LiveServer, admin_engine: AsyncEngine
) -> None:
    def frame_of(size: int) -> str:
        head = '{"id":"big","path":"/grommets","headers":{"x-pad":"'
        return head + "a" * (size - len(head) - 3) + '"}}'

    async with connect(tight_server.ws_url, additional_headers=AUTH) as ws:
        at_limit = await ask(ws, orjson.loads(frame_of(4096)))
        await ws.send(frame_of(4097))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()

    assert at_limit["status"] == 200
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert await lingering_work(admin_engine) == []


@pytest.mark.parametrize("how", ["close", "drop"])
async def test_a_client_leaving_mid_request_rolls_its_work_back(
    server: LiveServer, admin_engine: AsyncEngine, how: str
) -> None:
    ws = await connect(server.ws_url, additional_headers=AUTH)
    await ws.send(orjson.dumps(slow_write_batch("b", "doomed", 5)).decode())
    await ws.send(orjson.dumps({"id": "s", "path": "/_probe/sleep?s=5"}).decode())
    await wait_for_sleeper(admin_engine)
    if how == "close":
        await ws.close()
    else:
        ws.transport.abort()

    assert await lingering_work(admin_engine) == [], "every unit of work was finalised"
    assert await count(admin_engine, "grommets") == 0, "nothing half-written"
    async with connect(server.ws_url, additional_headers=AUTH) as again:
        assert (await ask(again, {"id": "1", "path": "/grommets"}))["status"] == 200


async def test_server_shutdown_rolls_back_what_is_in_flight_and_exits(
    database_url: str, admin_engine: AsyncEngine
) -> None:
    async with live_server(APP, {"DATABASE_URL": database_url}) as live:
        async with connect(live.ws_url, additional_headers=AUTH) as ws:
            grommet = {"name": "kept", "material": "brass", "diameter_mm": 5}
            done = await ask(
                ws, {"id": "w", "method": "POST", "path": "/grommets", "body": grommet}
            )
            await ws.send(orjson.dumps(slow_write_batch("b", "doomed", 5)).decode())
            await wait_for_sleeper(admin_engine)
            started = asyncio.get_running_loop().time()
            exit_status = await live.stop()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()

    assert done["status"] == 201
    # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is over.
    assert exit_status in (0, -15), live.log()
    assert "Traceback" not in live.log() and "ERROR" not in live.log(), live.log()
    assert asyncio.get_running_loop().time() - started < 4, "in-flight work did not hold it up"
    # uvicorn closes every socket itself (1012, Service Restart) before the app hears of it.
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    assert await lingering_work(admin_engine) == []
    names = (
        await count(admin_engine, "grommets", "name = 'kept'"),
        await count(admin_engine, "grommets", "name = 'doomed'"),
    )
    assert names == (1, 0), "finished work kept, in-flight work rolled back"


def doc_example(language: str) -> tuple[str, list[str]]:
    """The `language` example of docs/websocket.md and the lines it says it prints."""
    doc = (ROOT / "docs" / "websocket.md").read_text()
    found = re.search(rf"```{language}\n(.*?)```\n\nIt prints[^\n]*\n\n```\n(.*?)```", doc, re.S)
    assert found is not None, f"no {language} example in docs/websocket.md"
    return found.group(1), found.group(2).splitlines()


async def run_example(command: list[str]) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_the_python_example_of_the_guide_runs_as_documented(
    server: LiveServer, tmp_path: Path
) -> None:
    code, expected = doc_example("python")
    script = tmp_path / "client.py"
    script.write_text(code)

    demo = token(sub="demo")
    printed = await run_example([sys.executable, str(script), server.ws_url, demo])
    assert len(printed) == len(expected)
    for line, documented in zip(printed, expected, strict=True):
        pattern = re.escape(documented).replace("/grommets/4", r"/grommets/\d+")
        assert re.fullmatch(pattern, line), (line, documented)


def node_command() -> list[str] | None:
    """Node.js with a global WebSocket (Node 22, or Node 20 behind a flag), if installed."""
    node = shutil.which("node")
    if node is None:
        return None
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    for flags in ([], ["--experimental-websocket"]):
        done = subprocess.run([node, *flags, "-e", probe], capture_output=True, check=False)
        if done.returncode == 0:
            return [node, *flags]
    return None


async def test_the_javascript_example_of_the_guide_runs_as_documented(
    server: LiveServer, tmp_path: Path
) -> None:
    node = node_command()
    if node is None:
        pytest.skip("needs Node.js with a global WebSocket to run the browser example")
    code, expected = doc_example("javascript")
    script = tmp_path / "client.mjs"
    code = code.replace("paste the token `make run` printed", token(sub="demo"))
    script.write_text(code.replace("ws://127.0.0.1:8000/ws", server.ws_url))

    assert await run_example([*node, str(script)]) == expected


async def test_uvicorn_refuses_bad_handshakes_with_an_http_problem(server: LiveServer) -> None:
    foreign = {**AUTH, "Origin": "http://evil.example"}
    with pytest.raises(InvalidStatus) as origin:
        async with connect(server.ws_url, additional_headers=foreign):
            pass
    stale = {"Authorization": f"Bearer {token(ttl_s=-5)}"}
    with pytest.raises(InvalidStatus) as expired:
        async with connect(server.ws_url, additional_headers=stale):
            pass
    own = {**AUTH, "Origin": server.http_url}
    async with connect(server.ws_url, additional_headers=own) as ws:
        allowed = await ask(ws, {"id": "1", "path": "/grommets"})
    async with connect(server.ws_url, additional_headers={}) as ws:  # no token
        anonymous = await ask(ws, {"id": "1", "path": "/grommets"})

    assert origin.value.response.status_code == 403
    assert orjson.loads(origin.value.response.body)["type"] == "urn:carpool:problem:foreign-origin"
    assert expired.value.response.status_code == 401
    challenge = expired.value.response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="carpool", error="invalid_token"')
    assert allowed["status"] == 200
    assert anonymous["status"] == 401
