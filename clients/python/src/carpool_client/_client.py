"""`Client`: one object that sends calls through the links its options choose."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from carpool_client._batching import BatchLink
from carpool_client._calls import NO_BODY, Call, RetryPolicy, TokenSource, dumps
from carpool_client._http import HttpLink
from carpool_client._live import Subscription
from carpool_client._response import Response, raise_for_problem
from carpool_client._socket import SocketLink
from carpool_client._transaction import Transaction
from carpool_client.operations import Operations

Transport = Literal["http", "ws"]


class Client(Operations):
    """carpool's client. Use it as `async with Client(base_url, token=...) as client:`.

    - `transport="http"` (default): safe calls made together (the same event-loop turn, or
      within `batch_window_s`) go out as one `POST /batch`, split at the server's
      `max_items`; one alone, and every unsafe call, as a plain request. `batch=False`
      sends every call on its own.
    - `transport="ws"`: every call is a frame on one socket (`/ws`), answers matched by id.
    - `subscribe(path)` follows a GET live over the socket (whatever the transport).
    - `transaction()` gathers calls into one atomic batch with references between them;
      over HTTP it carries an `Idempotency-Key` and is retried like any unsafe call.
    - Unsafe calls carry an `Idempotency-Key` (one of their own unless given) and, like
      safe ones, are retried on 503 and network failures as `retry` says.
    - `token` is a string, or a callable asked again for each request and connection.
    - Error answers (>= 400) raise `ProblemError` unless `raise_for_status=False` (here,
      or per call).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: TokenSource = None,
        transport: Transport = "http",
        batch: bool = True,
        batch_window_s: float = 0.0,
        max_items: int | None = None,
        retry: RetryPolicy | None = None,
        raise_for_status: bool = True,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if transport not in ("http", "ws"):
            raise ValueError(f"transport must be 'http' or 'ws', not {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.raise_for_status = raise_for_status
        self.retry = retry if retry is not None else RetryPolicy()
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(
            base_url=self.base_url, headers=dict(headers or {}), timeout=timeout_s
        )
        self._http_link = HttpLink(self.http, token, self.retry)
        self._batch_link = (
            BatchLink(self._http_link, window_s=batch_window_s, max_items=max_items)
            if batch
            else None
        )
        ws_url = "ws" + self.base_url.removeprefix("http") + "/ws"
        self.socket = SocketLink(ws_url, token, self.retry, open_timeout_s=connect_timeout_s)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket (if one was opened) and the HTTP connections."""
        await self.socket.close()
        if self._own_http:
            await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = NO_BODY,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool | None = None,
    ) -> Response:
        """Call `method path` (with `params` as its query and `json` as its body)."""
        call = Call(method.upper(), with_query(path, params), dict(headers or {}), json)
        if not call.safe and not any(k.lower() == "idempotency-key" for k in call.headers):
            call = Call(call.method, call.path, {**call.headers, "Idempotency-Key": _key()}, json)
        response = await self._send(call)
        check = self.raise_for_status if raise_for_status is None else raise_for_status
        return raise_for_problem(response) if check else response

    async def _send(self, call: Call) -> Response:
        if self.transport == "ws":
            return await self.socket.send(call)
        if self._batch_link is not None and call.safe and _batchable(call):
            return await self._batch_link.send(call)
        return await self._http_link.send(call)

    async def get(self, path: str, **options: Any) -> Response:
        return await self.request("GET", path, **options)

    async def head(self, path: str, **options: Any) -> Response:
        return await self.request("HEAD", path, **options)

    async def options(self, path: str, **options: Any) -> Response:
        return await self.request("OPTIONS", path, **options)

    async def post(self, path: str, **options: Any) -> Response:
        return await self.request("POST", path, **options)

    async def put(self, path: str, **options: Any) -> Response:
        return await self.request("PUT", path, **options)

    async def patch(self, path: str, **options: Any) -> Response:
        return await self.request("PATCH", path, **options)

    async def delete(self, path: str, **options: Any) -> Response:
        return await self.request("DELETE", path, **options)

    def transaction(self, *, atomic: bool = True) -> Transaction:
        """A new transaction, sent over this client's transport (see `Transaction`)."""
        return Transaction(self._send_batch, atomic=atomic)

    async def _send_batch(self, envelope: Mapping[str, Any]) -> tuple[int, Mapping[str, str], str]:
        if self.transport == "ws":
            status, text = await self.socket.send_batch(envelope)
            return status, {}, text
        # One key for every attempt: a lost answer is resent and replayed, not run twice; a
        # transaction that rolled back stored nothing, so its retry runs (and fails) again.
        headers = {"content-type": "application/json", "Idempotency-Key": _key()}
        content = dumps(envelope).encode()
        answer = await self._http_link.exchange("POST", "/batch", headers, content)
        return answer.status_code, dict(answer.headers), answer.text

    def subscribe(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        raise_for_status: bool | None = None,
    ) -> Subscription:
        """Follow `path` live: `async for update in client.subscribe(path)` (see
        `Subscription`)."""
        check = self.raise_for_status if raise_for_status is None else raise_for_status
        return Subscription(self.socket, with_query(path, params), raise_for_status=check)


def with_query(path: str, params: Mapping[str, Any] | None) -> str:
    """`path` with `params` (None values left out) added to its query string."""
    if not params:
        return path
    pairs = [(name, _text(value)) for name, value in params.items() if value is not None]
    if not pairs:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode(pairs)}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _batchable(call: Call) -> bool:
    # Items may not carry these: such a call goes out on its own.
    return not any(name.lower() in ("authorization", "cookie") for name in call.headers)


def _key() -> str:
    return str(uuid.uuid4())
