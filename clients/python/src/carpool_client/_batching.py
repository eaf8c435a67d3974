"""The batch link: safe calls made together go out as one `POST /batch`.

Like tRPC's `httpBatchLink`: the calls made in the same event-loop turn (or within
`window_s`) are gathered; one alone goes out as a plain request; more go out as one batch,
split at the server's `max_items` (read once from `GET /batch`). Each caller gets its
item's status, own headers and body bytes: what the single request would have answered.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from carpool_client._calls import Call, dumps
from carpool_client._http import HttpLink
from carpool_client._response import Response
from carpool_client._spans import item_bodies

DEFAULT_MAX_ITEMS = 50


@dataclass
class _Waiting:
    call: Call
    answer: asyncio.Future[Response]

    def settle(self, response: Response) -> None:
        if not self.answer.done():  # its caller may have stopped waiting (cancelled)
            self.answer.set_result(response)


class BatchLink:
    """Gathers safe calls into batches sent through `http`."""

    def __init__(self, http: HttpLink, *, window_s: float = 0.0, max_items: int | None = None):
        self._http = http
        self._window_s = window_s
        self._max_items = max_items
        self._limits_read: asyncio.Task[int] | None = None
        self._queue: list[_Waiting] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def send(self, call: Call) -> Response:
        """`call`'s answer, once the batch it joins has been answered."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(call, loop.create_future())
        self._queue.append(waiting)
        if len(self._queue) == 1:
            if self._window_s > 0:
                loop.call_later(self._window_s, self._flush)
            else:
                loop.call_soon(self._flush)
        return await waiting.answer

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            if len(batch) == 1:
                batch[0].settle(await self._http.send(batch[0].call))
                return
            size = await self.max_items()
            chunks = [batch[at : at + size] for at in range(0, len(batch), size)]
            await asyncio.gather(*(self._answer_chunk(chunk) for chunk in chunks))
        except BaseException as exc:
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def max_items(self) -> int:
        """The server's `max_items` (read once), or the one given to the link."""
        if self._max_items is not None:
            return self._max_items
        if self._limits_read is None:
            self._limits_read = asyncio.ensure_future(self._read_limits())
        return await self._limits_read

    async def _read_limits(self) -> int:
        answer = await self._http.exchange("GET", "/batch", {}, None)
        if answer.status_code != 200:
            return DEFAULT_MAX_ITEMS
        self._max_items = int(answer.json().get("max_items", DEFAULT_MAX_ITEMS))
        return self._max_items

    async def _answer_chunk(self, chunk: list[_Waiting]) -> None:
        if len(chunk) == 1:
            chunk[0].settle(await self._http.send(chunk[0].call))
            return
        calls = [waiting.call for waiting in chunk]
        content = dumps(envelope_of(calls)).encode()
        headers = {"content-type": "application/json"}
        answer = await self._http.exchange("POST", "/batch", headers, content)
        if answer.status_code != 200:  # the batch as a whole was refused: so is every call
            for waiting in chunk:
                waiting.settle(
                    Response(
                        answer.status_code,
                        dict(answer.headers),
                        answer.content,
                        waiting.call.method,
                        waiting.call.path,
                    )
                )
            return
        for waiting, response in zip(chunk, responses_of(answer.text, calls), strict=True):
            waiting.settle(response)


def envelope_of(calls: list[Call]) -> dict[str, object]:
    """The short form for plain GETs, else the full form, never atomic: a batched call must
    not fail because another one did."""
    if all(call.method == "GET" and not call.headers for call in calls):
        return {"load": [call.path for call in calls]}
    return {"atomic": False, "requests": [call.item() for call in calls]}


def responses_of(text: str, calls: list[Call]) -> list[Response]:
    """Each call's answer in the `POST /batch` answer `text` (in request order)."""
    items = json.loads(text)
    bodies = item_bodies(text)
    return [
        Response(item["status"], item.get("headers") or {}, body, call.method, call.path)
        for item, body, call in zip(items["responses"], bodies, calls, strict=True)
    ]
