"""The one place where exceptions become RFC 9457 problem+json answers."""

from __future__ import annotations

import logging
from typing import Any

from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool import errors
from carpool.observability import metrics
from carpool.web.responses import problem_response

log = logging.getLogger("carpool.errors")
PROBLEM_TYPE = "urn:carpool:problem:"
INTERNAL_ERROR_DETAIL = "An unexpected error occurred; it has been logged."
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# (status, type slug) for each error kind users can cause; the first matching class wins.
_APP_ERRORS: tuple[tuple[type[errors.AppError], int, str], ...] = (
    (errors.NotFound, 404, "not-found"),
    (errors.Conflict, 409, "conflict"),
    (errors.PreconditionFailed, 412, "precondition-failed"),
    (errors.Invalid, 422, "validation"),
    (errors.BadRequest, 400, "bad-request"),
    (errors.UnsupportedMediaType, 415, "unsupported-media-type"),
    (errors.TimedOut, 504, "timeout"),
    (errors.DatabaseBusy, 503, "busy"),
    (errors.DatabaseUnavailable, 503, "database-unavailable"),
    (errors.Unavailable, 503, "unavailable"),
    (errors.UpstreamFailed, 502, "upstream-failed"),
    (errors.UpstreamTimedOut, 504, "upstream-timeout"),
)


def problem_for(exception: BaseException) -> HTTPResponse:
    """The problem+json response that answers `exception`; never a stack trace."""
    response = _problem_for(exception)
    if response.status in (429, 503):
        metrics.count_refusal(response.status, _slug(exception))
    return response


def _slug(exception: BaseException) -> str:
    if isinstance(exception, errors.RateLimited):
        return "rate-limited"
    for kind, _, slug in _APP_ERRORS:
        if isinstance(exception, kind):
            return slug
    return "commit-failed" if isinstance(exception, errors.CommitFailed) else "about:blank"


def _problem_for(exception: BaseException) -> HTTPResponse:
    if isinstance(exception, errors.CommitFailed):
        status = 409 if exception.conflict else 503
        return problem_response(status, exception.detail, type_=PROBLEM_TYPE + "commit-failed")
    if isinstance(exception, errors.RateLimited):
        return problem_response(
            429,
            exception.detail,
            type_=PROBLEM_TYPE + "rate-limited",
            headers=dict(exception.headers),
        )
    if isinstance(exception, errors.AppError):
        for kind, status, slug in _APP_ERRORS:
            if isinstance(exception, kind):
                field_errors = getattr(exception, "errors", ())
                retry_after = getattr(exception, "retry_after_s", None)
                headers = {"retry-after": str(retry_after)} if retry_after else None
                return problem_response(
                    status,
                    exception.detail,
                    type_=PROBLEM_TYPE + slug,
                    errors=field_errors,
                    headers=headers,
                )
    if isinstance(exception, SanicException):
        return _sanic_problem(exception)
    log.error("unhandled exception", exc_info=exception)
    return problem_response(500, INTERNAL_ERROR_DETAIL)


def _sanic_problem(exception: SanicException) -> HTTPResponse:
    status = int(exception.status_code)
    headers: dict[str, Any] = dict(getattr(exception, "headers", None) or {})
    detail = str(exception) or "The request could not be handled."
    if status >= 500:
        log.error("server error", exc_info=exception)
        detail = INTERNAL_ERROR_DETAIL
    return problem_response(status, detail, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    allowed = []
    for method in _METHODS:
        try:
            request.app.router.get(request.path, method, request.headers.getone("host", None))
        except SanicException:
            continue
        allowed.append(method)
    return allowed


class ProblemErrorHandler(ErrorHandler):
    """Sanic's error handler, answering every error (its own included) as problem+json."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        try:
            response = problem_for(exception)
        except Exception:
            # Sanic's own fallback would answer text/plain; errors are problem+json, always.
            log.exception("the error handler failed")
            return problem_response(500, INTERNAL_ERROR_DETAIL)
        if response.status == 405 and "allow" not in response.headers:
            # Sanic's router forgets the allowed methods of dynamic routes; 405 must say them.
            response.headers["allow"] = ", ".join(_allowed_methods(request))
        return response

    @staticmethod
    def log(request: Request, exception: Exception) -> None:
        # problem_for logs what deserves it; Sanic's own logging would print 4xx tracebacks.
        return None
