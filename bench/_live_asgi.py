"""What bench/live.py serves: the real app, plus `/_bench/live` telling what live answers cost.

`uvicorn bench._live_asgi:app` (from the repository root).
"""

from __future__ import annotations

from dataclasses import asdict

from container import Container
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.app import create_app
from carpool.web.endpoints import PUBLIC, Doc, endpoint
from carpool.web.responses import json_response

stats = Blueprint("bench_live", url_prefix="/_bench")


async def live_stats(request: Request) -> HTTPResponse:
    """Rounds, runs and queries of this worker's live answers so far."""
    hub = request.app.ctx.live
    return json_response({**asdict(hub.stats), "subscriptions": hub.count})


endpoint(
    stats, "/live", scope=PUBLIC, unit=False, composable=False,
    doc=Doc("benchLive", "Live answers' costs (benchmark only)", "bench"),
)(live_stats)  # fmt: skip

app = create_app(Container())
app.blueprint(stats)
