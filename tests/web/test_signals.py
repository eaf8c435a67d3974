"""Sanic's request signal: skipped when nobody listens, heard when somebody does."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import make_container
from tests.helpers import AUTH, create_app, served


async def test_a_listener_on_the_request_signal_hears_every_request(database_url: str) -> None:
    app = create_app(make_container(database_url))
    heard: list[str] = []

    @app.signal("http.lifecycle.request")
    async def on_request(request: Any) -> None:
        heard.append(request.path)

    async with served(app, headers=AUTH) as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/grommets/1")).status_code == 404
    assert heard == ["/health", "/grommets/1"]


async def test_without_a_listener_the_request_signal_is_not_dispatched(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://carpool.test") as http:
        assert (await http.get("/health")).status_code == 200
    assert app._request_event_heard is False
