"""Calls cut by the server's shutdown: answered with carpool's own 503 problem, not a 500.

uvicorn cancels the calls still running when `--timeout-graceful-shutdown` has passed; each
has rolled back by then (its unit-of-work scope). Unless its answer had begun, it gets a
503 problem+json saying nothing was kept, with Retry-After (another instance, or this one
restarted, can take it) and `Connection: close`.
"""

from __future__ import annotations

import logging
from typing import Any

from carpool.web.responses import problem_response

log = logging.getLogger("carpool.shutdown")
PROBLEM_TYPE = "urn:carpool:problem:shutting-down"
RETRY_AFTER_S = 1


def cut_at_shutdown(exc: BaseException) -> bool:
    """Whether a cancellation is the server's shutdown timeout: uvicorn cancels the calls
    still running with a message saying so ("... timeout graceful shutdown exceeded");
    any other cancellation (a caller in-process, a test) is passed on as it came."""
    return any("graceful shutdown" in str(arg) for arg in exc.args)


async def answer_cut_call(send: Any) -> bool:
    """Send the 503 of a call cut at shutdown; False if its answer had already begun (or
    the connection is gone), in which case nothing more can be said."""
    response = problem_response(
        503,
        "The server shut down before this call finished; nothing it did was kept."
        " Retry after the delay in Retry-After.",
        type_=PROBLEM_TYPE,
        headers={"retry-after": str(RETRY_AFTER_S), "connection": "close"},
    )
    headers = [(b"content-type", str(response.content_type).encode())]
    headers += [
        (k.encode(), v.encode()) for k, v in response.headers.items() if k != "content-type"
    ]
    body = bytes(response.body or b"")
    headers.append((b"content-length", str(len(body)).encode()))
    try:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the answer had begun (the server refuses a second start), or closed
        return False
    log.warning("a call cut at shutdown was answered 503 (rolled back)")
    return True
