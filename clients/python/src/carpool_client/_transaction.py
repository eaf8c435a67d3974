"""Transactions: an explicit atomic batch whose later calls use earlier answers.

`tx.post(...)` answers a `Handle` at once; `handle["body"]["id"]` (or
`handle.ref("/body/id")`) is a `Ref`, which the envelope carries as `"{{0/body/id}}"`:
the server puts the value found there in its place (a number stays a number), or, inside
a longer string (`f"/widgets/{ref}"`), its text. References are built, never typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from json import loads
from types import TracebackType
from typing import Any

from carpool_client._batching import responses_of
from carpool_client._calls import NO_BODY, Call
from carpool_client._response import ProblemError, Response, TransactionFailed


class Ref:
    """A reference to a value of an earlier item's answer (`{"status", "headers", "body"}`)."""

    __slots__ = ("item_id", "pointer")

    def __init__(self, item_id: str, pointer: str = "") -> None:
        self.item_id = item_id
        self.pointer = pointer

    def __getitem__(self, key: str | int) -> Ref:
        escaped = str(key).replace("~", "~0").replace("/", "~1")
        return Ref(self.item_id, f"{self.pointer}/{escaped}")

    def __str__(self) -> str:
        return "{{" + self.item_id + self.pointer + "}}"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Handle:
    """One call of a transaction: references into its answer now, its `response` once the
    transaction has been sent."""

    def __init__(self, item_id: str, call: Call) -> None:
        self.id = item_id
        self.call = call
        self._response: Response | None = None

    def __getitem__(self, key: str) -> Ref:
        return Ref(self.id)[key]

    def ref(self, pointer: str) -> Ref:
        """The reference at an RFC 6901 `pointer` (`"/body/id"`) into this item's answer."""
        return Ref(self.id, pointer)

    @property
    def response(self) -> Response:
        if self._response is None:
            raise RuntimeError("the transaction has not been sent yet")
        return self._response


Sender = Callable[[Mapping[str, Any]], Awaitable[tuple[int, Mapping[str, str], str]]]


class Transaction:
    """Calls gathered, then sent as one batch (`atomic` by default): all commit or none.

    `await tx.commit()` (or leaving `async with client.transaction() as tx` without an
    exception) sends it and answers every item's `Response`. A rolled-back atomic
    transaction raises `TransactionFailed`, with each item's answer on it and on the
    handles; a batch refused as a whole (its envelope, its token) raises its `ProblemError`.
    """

    def __init__(self, send: Sender, *, atomic: bool = True) -> None:
        self._send = send
        self.atomic = atomic
        self.handles: list[Handle] = []
        self.committed: bool | None = None

    def request(
        self,
        method: str,
        path: str | Ref,
        *,
        json: Any = NO_BODY,
        headers: Mapping[str, str | Ref] | None = None,
    ) -> Handle:
        """Add a call; its handle (refer to its answer with `handle["body"]["id"]`)."""
        texts = {name: str(value) for name, value in (headers or {}).items()}
        handle = Handle(str(len(self.handles)), Call(method.upper(), str(path), texts, json))
        self.handles.append(handle)
        return handle

    def get(self, path: str | Ref, **options: Any) -> Handle:
        return self.request("GET", path, **options)

    def post(self, path: str | Ref, **options: Any) -> Handle:
        return self.request("POST", path, **options)

    def put(self, path: str | Ref, **options: Any) -> Handle:
        return self.request("PUT", path, **options)

    def patch(self, path: str | Ref, **options: Any) -> Handle:
        return self.request("PATCH", path, **options)

    def delete(self, path: str | Ref, **options: Any) -> Handle:
        return self.request("DELETE", path, **options)

    def envelope(self) -> dict[str, Any]:
        """The `POST /batch` body this transaction sends."""
        items = [{"id": handle.id, **handle.call.item()} for handle in self.handles]
        return {"atomic": self.atomic, "requests": items}

    async def commit(self) -> list[Response]:
        """Send the transaction; every item's answer (see the class docstring)."""
        if self.committed is not None:
            raise RuntimeError("a transaction is sent once")
        if not self.handles:
            self.committed = True
            return []
        status, headers, text = await self._send(self.envelope())
        if status != 200:
            raise ProblemError(Response(status, headers, text.encode(), "POST", "/batch"))
        self.committed = bool(loads(text)["committed"])
        responses = responses_of(text, [handle.call for handle in self.handles])
        for handle, response in zip(self.handles, responses, strict=True):
            handle._response = response
        if not self.committed:
            raise TransactionFailed(responses)
        return responses

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None and self.committed is None:
            await self.commit()
