"""What the browser test serves: the real app, plus the page of docs/live.md at `/_probe/live.html`
(same origin as the API, as the guide says to serve it).

`uvicorn tests.e2e.live_page_asgi:app` (from the repository root).
"""

from __future__ import annotations

import re
from pathlib import Path

from container import Container
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.app import create_app
from tests.helpers import probe, token

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "live.md"


def documented_page() -> str:
    """The guide's `html live-page` block."""
    found = re.search(r"```html live-page\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert found is not None, "docs/live.md has no live-page example"
    placeholder = "paste a token from `carpool token --scope catalog:read`"
    return found.group(1).replace(placeholder, token("catalog:read", sub="page"))


page = Blueprint("live_page", url_prefix="/_probe")


@probe(page, "/live.html")
async def live_html(request: Request) -> HTTPResponse:
    """The guide's browser example."""
    return HTTPResponse(documented_page(), content_type="text/html; charset=utf-8")


app = create_app(Container())
app.blueprint(page)
