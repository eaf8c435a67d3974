"""Examples for the batch and socket descriptions, supplied by the app factory.

The compose layer knows no route but its own: the example calls it shows (a batch, a
request frame) are the domain's, handed in by `create_app`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carpool.compose.frames import BAD_FRAME


@dataclass(frozen=True, slots=True)
class CallExamples:
    """Example calls of the app's routes, shown by `POST /batch` and the frames of `/ws`.

    `batch` is a `POST /batch` body that does something useful ("Try it out" sends it) and
    `batch_answer` its answer; `request` is one sub-request (`{"method", "path", ...}`) and
    `answer_body` the body it is answered with.
    """

    batch: Any
    batch_answer: Any
    request: dict[str, Any]
    answer_body: Any

    def request_frame(self) -> dict[str, Any]:
        return {"id": "1", **self.request}

    def answer_frame(self) -> dict[str, Any]:
        return {"id": "1", "status": 200, "headers": {}, "body": self.answer_body}

    def batch_frame(self) -> dict[str, Any]:
        return {"id": "2", "batch": self.batch}

    def batch_answer_frame(self) -> dict[str, Any]:
        return {"id": "2", "status": 200, "body": self.batch_answer}

    def subscribe_frame(self) -> dict[str, Any]:
        return {"type": "subscribe", "id": "s1", "path": self.request["path"]}

    def update_frame(self) -> dict[str, Any]:
        headers = {"etag": '"5d41402abc4b2a76b9719d91"'}
        return {"type": "update", "id": "s1", "status": 200, "headers": headers,
                "body": self.answer_body}  # fmt: skip

    def unsubscribe_frame(self) -> dict[str, Any]:
        return {"type": "unsubscribe", "id": "s1"}


BAD_FRAME_ANSWER = {
    "id": None,
    "status": 400,
    "body": {
        "type": BAD_FRAME,
        "title": "Bad Request",
        "status": 400,
        "detail": "The frame is invalid.",
        "errors": [{"detail": "Field required", "pointer": "/path"}],
    },
}
