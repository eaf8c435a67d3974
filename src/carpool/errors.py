"""Errors any layer may raise; the web layer maps each kind to one problem+json answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input: `pointer` is a JSON Pointer into the body, or `parameter` a query key."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"detail": self.detail}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.parameter is not None:
            out["parameter"] = self.parameter
        return out


class AppError(Exception):
    """Base of every error a user should read; `detail` is shown to the client as is."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    """The addressed thing does not exist."""


class Conflict(AppError):
    """The request contradicts the current state (a taken name, a thing still in use)."""


class PreconditionFailed(AppError):
    """A condition the client set (If-Match, If-None-Match) does not hold: nothing was done."""


class BadRequest(AppError):
    """The request cannot be read at all (malformed JSON, a malformed envelope)."""


class UnsupportedMediaType(AppError):
    """The body is not JSON."""


class Invalid(AppError):
    """The request was read, but some of its values are not acceptable."""

    def __init__(self, detail: str, errors: Sequence[FieldError]) -> None:
        super().__init__(detail)
        self.errors = tuple(errors)


class TimedOut(AppError):
    """The work did not finish in the time allowed; nothing it did was kept."""


class Unavailable(AppError):
    """Something the request needs is not there right now (not configured, not reachable)."""


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached (down, restarting, connection lost): a 503 to retry."""

    retry_after_s = 2


class DatabaseBusy(Unavailable):
    """No database connection was free in time: a 503 to retry soon."""

    retry_after_s = 1


class UpstreamFailed(AppError):
    """A service carpool called answered with an error or with something unreadable."""


class UpstreamTimedOut(AppError):
    """A service carpool called did not answer in the time allowed."""


class RateLimited(AppError):
    """The caller has used up their budget of calls for now; `headers` say when to retry."""

    def __init__(self, detail: str, *, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.headers = headers


class CommitFailed(AppError):
    """The database refused to commit the unit of work; nothing it did was kept."""

    def __init__(self, detail: str, *, conflict: bool) -> None:
        super().__init__(detail)
        self.conflict = conflict
