"""Request middleware: a unit of work per request, finalised before the answer leaves."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Sanic
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from carpool.data.unit_of_work import UnitOfWork
from carpool.observability import logs
from carpool.web.errors import INTERNAL_ERROR_DETAIL, problem_for
from carpool.web.responses import problem_response

UnitOfWorkFactory = Callable[..., Awaitable[UnitOfWork]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger("carpool.errors")


async def finish_unit_of_work(uow: UnitOfWork, response: BaseHTTPResponse) -> BaseHTTPResponse:
    """Commit (unsafe, status < 400) or roll back; a refused COMMIT replaces the answer.

    Returns the response to send: `response` itself, or a problem if the commit failed.
    """
    commit = not uow.read_only and response.status < 400
    try:
        await uow.finish(commit=commit)
    except Exception as exc:
        response = problem_for(exc)
    response.headers["server-timing"] = uow.stats.server_timing()
    return response


def _not_a_response(value: object) -> HTTPResponse:
    # Sanic would pass it on and fail to send it, answering a bare 500 past this middleware.
    log.error("a handler returned %s, not a response", type(value).__name__)
    return problem_response(500, INTERNAL_ERROR_DETAIL)


def install(
    app: Sanic[Any, Any], unit_of_work: UnitOfWorkFactory, *, request_log: bool = False
) -> None:
    """Attach a fresh unit of work to every request and finalise it on the way out.

    Finalisation runs in the (single) response middleware so that a failed COMMIT can
    still change the status; Sanic logs and swallows exceptions raised there, so none is.
    The same middleware stamps `X-Request-ID` on every answer and writes the request's
    log line (if `request_log`): Sanic skips later response middleware once one answers.
    """

    async def begin(request: Request) -> None:
        logs.mark_start(request)
        request.ctx.uow = await unit_of_work(read_only=request.method in SAFE_METHODS)

    async def finish(request: Request, response: Any) -> HTTPResponse | None:
        answer = response if isinstance(response, BaseHTTPResponse) else _not_a_response(response)
        uow: UnitOfWork | None = getattr(request.ctx, "uow", None)
        final = answer if uow is None else await finish_unit_of_work(uow, answer)
        final.headers[logs.REQUEST_ID_HEADER] = logs.request_id(request)
        if request_log:
            logs.log_request(request, final, uow)
        return final if isinstance(final, HTTPResponse) and final is not response else None

    app.register_middleware(begin, "request", priority=1000)
    app.register_middleware(finish, "response", priority=1000)
