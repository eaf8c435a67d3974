"""HTTP middleware: request ids, the request's log line and compression (transport concerns).

Batch items and frames do not pass through here: nothing that must hold for every call
lives in middleware (see `web/endpoints.py` and `web/unit_scope.py`).
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Sanic
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from carpool.data.unit_of_work import Work
from carpool.observability import logs, metrics
from carpool.web.compression import compress
from carpool.web.errors import INTERNAL_ERROR_DETAIL
from carpool.web.responses import problem_response

log = logging.getLogger("carpool.errors")


def _not_a_response(value: object) -> HTTPResponse:
    # Sanic would pass it on and fail to send it, answering a bare 500 past this middleware.
    log.error("a handler returned %s, not a response", type(value).__name__)
    return problem_response(500, INTERNAL_ERROR_DETAIL)


def install(app: Sanic[Any, Any], *, request_log: bool = False) -> None:
    """Stamp `X-Request-ID` on every answer, write the request's log line (if `request_log`)
    and compress the answer as the client accepts (`web/compression.py`).

    One response middleware does all: Sanic skips later response middleware once one answers.
    (The request's start and id are noted by the app as it takes the request: `logs.mark_start`.)
    """

    async def finish(request: Request, response: Any) -> HTTPResponse | None:
        final = response if isinstance(response, BaseHTTPResponse) else _not_a_response(response)
        final.headers[logs.REQUEST_ID_HEADER] = logs.request_id(request)
        metrics.count_call(request, final.status, "single")
        if request_log:
            work: Work | None = request.ctx.uow
            logs.log_request(request, final, work)
        compress(final, request.headers.get("accept-encoding"))
        return final if isinstance(final, HTTPResponse) and final is not response else None

    app.register_middleware(finish, "response", priority=1000)
