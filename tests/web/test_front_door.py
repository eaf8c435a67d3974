"""The ASGI edge adds its headers without dropping the app's own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from carpool.web.front_door import _content_security_policy, _merged
from carpool.web.refusals import RefusalLog
from tests.conftest import make_container
from tests.helpers import create_app
from tests.websocket_support import AsgiSocket


def test_vary_values_are_joined_and_other_headers_kept() -> None:
    app_headers = [(b"vary", b"Accept-Encoding"), (b"x-content-type-options", b"nosniff")]
    added = [(b"vary", b"Origin"), (b"x-content-type-options", b"nosniff"), (b"x-a", b"1")]
    assert _merged(app_headers, added) == [
        (b"vary", b"Accept-Encoding, Origin"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-a", b"1"),
    ]


def test_the_policy_lists_the_pages_own_inline_scripts_by_hash() -> None:
    page = b"<html><script>alert(1)</script><script src='/x.js'></script></html>"
    policy = _content_security_policy(page)
    # sha256("alert(1)"), base64: a script injected later would have another hash.
    assert "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='" in policy
    assert policy.count("sha256-") == 1


# -- the WebSocket handshake: addresses, origins, the log of refusals --------------------------


@pytest.fixture(scope="module")
async def guarded(database_url: str) -> AsyncIterator[Any]:
    settings = {
        "ws_max_anonymous_per_address": 2,
        "auth_anonymous_scopes": "catalog:read",
        "allowed_origins": "https://listed.test",
    }
    application = create_app(make_container(database_url, **settings))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def _close(*sockets: AsgiSocket) -> None:
    for socket in sockets:
        socket.leave()
        await socket.ended()


async def test_sockets_without_a_token_count_per_address_and_past_the_cap_are_refused_429(
    guarded: Any,
) -> None:
    first, second = AsgiSocket(guarded, headers={}), AsgiSocket(guarded, headers={})
    await first.open()
    await second.open()
    third = AsgiSocket(guarded, headers={})
    refused = await third.handshake(http_refusals=True)
    assert refused["type"] == "websocket.http.response.start" and refused["status"] == 429
    body = await third.next_message()
    assert b"too-many-sockets" in body["body"]
    await _close(first)
    fourth = await AsgiSocket(guarded, headers={}).open()  # a slot came free
    await _close(second, fourth)


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("http://carpool.test", True),  # the server's own origin, over ws://
        ("https://carpool.test", False),  # the same host under another scheme
        ("https://listed.test", True),
        ("http://listed.test", False),
    ],
)
async def test_the_socket_origin_check_compares_the_scheme_too(
    guarded: Any, origin: str, accepted: bool
) -> None:
    socket = AsgiSocket(guarded, headers={"origin": origin})
    first = await socket.handshake(http_refusals=True)
    if accepted:
        assert first["type"] == "websocket.accept"
        await _close(socket)
    else:
        assert first["type"] == "websocket.http.response.start" and first["status"] == 403


def test_refused_handshakes_log_one_json_ready_line_each_at_most_so_many_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RefusalLog(lines=3, window_s=3600)
    with caplog.at_level(logging.INFO, logger="carpool.websocket"):
        for _ in range(10):
            log.refused(403, "urn:carpool:problem:foreign-origin", "203.0.113.9")
    lines = [r for r in caplog.records if r.name == "carpool.websocket"]
    assert len(lines) == 3
    assert {r.levelno for r in lines} == {logging.WARNING}
    assert lines[0].status == 403 and lines[0].client == "203.0.113.9"  # type: ignore[attr-defined]
    server = logging.getLogger("uvicorn.error")
    dropped = server.makeRecord(
        "uvicorn.error", logging.ERROR, __file__, 1,
        "ASGI callable returned without completing handshake.", (), None,
    )  # fmt: skip
    kept = server.makeRecord(
        "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n", (), None
    )
    assert not server.filter(dropped) and server.filter(kept)
