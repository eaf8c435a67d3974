"""What a call answers (`Response`), what a failed one raises (`ProblemError`), and what a
subscription yields (`Update`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROBLEM_KEYS = ("type", "title", "status", "detail", "errors")


@dataclass(frozen=True)
class Response:
    """One call's answer: its status, its headers (lower-case names), its raw body bytes.

    A batched call's headers are the item's own (such as `etag`, `location`), not the
    transport's: the batch answer has those once for all its items. A call with no body
    (a 204, a 304, any HEAD) has `content == b""` and `json()` answers None.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    method: str = "GET"
    path: str = ""

    def json(self) -> Any:
        """The body, decoded; None when there is none."""
        return json.loads(self.content) if self.content else None

    @property
    def text(self) -> str:
        return self.content.decode()

    @property
    def ok(self) -> bool:
        return self.status < 400


class CarpoolError(Exception):
    """Anything this client raises."""


class ProblemError(CarpoolError):
    """A call answered 4xx or 5xx: its RFC 9457 problem (`type`, `title`, `status`, `detail`,
    `errors`) and the whole `response`."""

    def __init__(self, response: Response) -> None:
        self.response = response
        body = _problem_of(response)
        self.problem: Mapping[str, Any] = body
        self.type: str = str(body.get("type", "about:blank"))
        self.title: str = str(body.get("title", ""))
        self.status: int = int(body.get("status", response.status))
        self.detail: str | None = body.get("detail")
        self.errors: list[dict[str, Any]] = list(body.get("errors") or [])
        super().__init__(
            f"{response.method} {response.path}: {self.status} {self.title}: {self.detail}"
        )


class TransactionFailed(CarpoolError):
    """An atomic transaction was rolled back: `responses` holds every item's answer (the
    failing one, `failed`, and the `424`s of those not run)."""

    def __init__(self, responses: list[Response]) -> None:
        self.responses = responses
        self.failed = next((r for r in responses if r.status >= 400 and r.status != 424), None)
        failing = self.failed or (responses[0] if responses else None)
        detail = "" if failing is None else f": {failing.status} {failing.path}"
        super().__init__(f"the transaction was rolled back{detail}")


class ConnectionLost(CarpoolError):
    """The socket closed before a frame's answer came (the call may be retried)."""


def _problem_of(response: Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"status": response.status, "detail": response.text}
    if not isinstance(body, dict):
        return {"status": response.status, "detail": str(body)}
    return {key: body[key] for key in PROBLEM_KEYS if key in body}


def raise_for_problem(response: Response) -> Response:
    """`response`, or its ProblemError if it is an error answer."""
    if response.status >= 400:
        raise ProblemError(response)
    return response


@dataclass(frozen=True)
class Update:
    """One answer of a subscription: its status, headers and body, as `GET` would answer;
    `ended` on a subscription's last one."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    path: str
    ended: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    def as_response(self) -> Response:
        return Response(self.status, self.headers, self.content, "GET", self.path)
