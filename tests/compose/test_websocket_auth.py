"""Who may use a socket: the handshake (Origin, token, sockets per caller), auth frames, and
every frame checked against its route's scope and its token's expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import make_container
from tests.helpers import bearer, create_app, token
from tests.websocket_support import AsgiSocket

ALLOWED = "http://allowed.test"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[Any]:
    settings = {"allowed_origins": ALLOWED, "ws_max_connections_per_caller": 2}
    application = create_app(make_container(database_url, **settings))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def ask(socket: AsgiSocket, frame: dict[str, Any]) -> dict[str, Any]:
    socket.send(frame)
    return await socket.answer()


async def close(*sockets: AsgiSocket) -> None:
    for socket in sockets:
        socket.leave()
        await socket.ended()


# -- the handshake -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (None, True),  # not a browser
        ("http://carpool.test", True),  # the server's own origin (its Host)
        (ALLOWED, True),
        ("http://evil.test", False),
        ("http://carpool.test.evil.test", False),
        ("null", False),
    ],
)
async def test_a_foreign_origin_is_refused_before_accept(
    app: Any, origin: str | None, accepted: bool
) -> None:
    headers = bearer() | ({"origin": origin} if origin is not None else {})
    socket = AsgiSocket(app, headers=headers)
    first = await socket.handshake()
    assert first["type"] == ("websocket.accept" if accepted else "websocket.close"), first
    if accepted:
        await close(socket)
    else:
        await socket.ended()


async def test_a_refused_handshake_answers_a_problem_when_the_server_can_send_one(
    app: Any,
) -> None:
    socket = AsgiSocket(app, headers={"origin": "http://evil.test"})
    start = await socket.handshake(http_refusals=True)
    body = await socket.next_message()
    await socket.ended()
    assert start["type"] == "websocket.http.response.start" and start["status"] == 403
    problem = orjson.loads(body["body"])
    assert problem["type"] == "urn:carpool:problem:foreign-origin"


async def test_a_bad_token_at_the_handshake_is_refused(app: Any) -> None:
    socket = AsgiSocket(app, headers={"authorization": f"Bearer {token(ttl_s=-1)}"})
    start = await socket.handshake(http_refusals=True)
    await socket.next_message()
    await socket.ended()
    assert start["status"] == 401
    headers = dict(start["headers"])
    assert headers[b"www-authenticate"].startswith(b'Bearer realm="carpool", error="invalid_token"')


async def test_a_caller_may_hold_only_so_many_sockets(app: Any) -> None:
    mine = bearer(sub="greedy")
    first = await AsgiSocket(app, headers=mine).open()
    second = await AsgiSocket(app, headers=mine).open()
    third = AsgiSocket(app, headers=mine)
    assert (await third.handshake())["type"] == "websocket.close"
    await third.ended()
    other = await AsgiSocket(app, headers=bearer(sub="someone-else")).open()
    await close(second)
    again = await AsgiSocket(app, headers=mine).open()
    # A browser's socket counts once its auth frame names the caller.
    anonymous = await AsgiSocket(app, headers={}).open()
    refused = await ask(anonymous, {"type": "auth", "id": "a", "token": token(sub="greedy")})
    assert refused["status"] == 429 and refused["type"] == "auth"
    await close(first, again, other, anonymous)


# -- frames ----------------------------------------------------------------------------------


async def test_frames_before_a_token_answer_401_then_an_auth_frame_opens_the_socket(
    app: Any,
) -> None:
    socket = await AsgiSocket(app, headers={}).open()
    before = await ask(socket, {"id": "1", "path": "/grommets"})
    batch = await ask(socket, {"id": "b", "batch": {"load": ["/grommets"]}})
    auth = await ask(socket, {"type": "auth", "id": "a", "token": token("catalog:read")})
    after = await ask(socket, {"id": "2", "path": "/grommets"})
    write = await ask(socket, {"id": "3", "method": "DELETE", "path": "/grommets/1"})
    await close(socket)

    assert before["status"] == 401 and before["body"]["type"] == "urn:carpool:problem:unauthorized"
    assert batch["status"] == 401
    assert auth == {
        "type": "auth",
        "id": "a",
        "status": 200,
        "body": {"sub": "tester", "scope": "catalog:read", "exp": auth["body"]["exp"]},
    }
    assert after["status"] == 200
    assert write["status"] == 403
    assert write["headers"]["www-authenticate"].endswith('scope="catalog:write"')


async def test_expiry_is_checked_per_frame_and_an_auth_frame_renews_it(app: Any) -> None:
    socket = await AsgiSocket(app, headers=bearer(sub="renewer", ttl_s=1)).open()
    fresh = await ask(socket, {"id": "1", "path": "/grommets"})
    await asyncio.sleep(1.2)
    stale = await ask(socket, {"id": "2", "path": "/grommets"})
    renewed = await ask(socket, {"type": "auth", "token": token(sub="renewer")})
    again = await ask(socket, {"id": "3", "path": "/grommets"})
    hijack = await ask(socket, {"type": "auth", "token": token(sub="mallory")})
    bad = await ask(socket, {"type": "auth", "token": "not.a.token"})
    still = await ask(socket, {"id": "4", "path": "/grommets"})
    await close(socket)

    assert fresh["status"] == 200
    assert stale["status"] == 401 and "expired" in stale["body"]["detail"]
    assert renewed["status"] == 200 and renewed["id"] is None
    assert again["status"] == 200
    assert hijack["status"] == 403, "a socket's caller cannot change"
    assert bad["status"] == 401
    assert still["status"] == 200, "a refused auth frame leaves the socket as it was"


async def test_a_frame_may_not_bring_its_own_authorization(app: Any) -> None:
    socket = await AsgiSocket(app, headers=bearer("catalog:read")).open()
    frame = {"id": "x", "method": "DELETE", "path": "/grommets/1"}
    escalation = await ask(socket, {**frame, "headers": {"Authorization": f"Bearer {token()}"}})
    await close(socket)
    assert escalation["status"] == 400
