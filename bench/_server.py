"""Benchmark helpers: a real `uvicorn asgi:app` on 127.0.0.1 with a seeded embedded database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx

from carpool.auth.identity import KNOWN_SCOPES
from carpool.auth.tokens import issue_token

ROOT = Path(__file__).resolve().parents[1]
_SECRET = "carpool-bench-secret-of-at-least-32-bytes"
AUTH = {
    "authorization": f"Bearer {issue_token(_SECRET, sub='bench', scopes=KNOWN_SCOPES, ttl_s=86400)}"
}
"""Full-scope credentials for the served app (every catalog route needs a token)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(*, app: str = "asgi:app", stderr: Path | None = None, **env: str) -> Iterator[str]:
    """Run uvicorn on `app` (one worker, uvloop, httptools, no access log); yield its base URL.
    `stderr`: a file for the server's stderr (its log lines), else this process's."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="carpool-bench-") as data_dir:
        environment = {
            **os.environ,
            "DATA_DIR": data_dir,
            "SEED_DEMO_DATA": "false",
            "LOG_LEVEL": "WARNING",
            "AUTH_JWT_SECRET": _SECRET,
            **env,
        }
        environment.pop("DATABASE_URL", None)
        command = [
            sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--loop", "uvloop", "--http", "httptools",
        ]  # fmt: skip
        with running(command, environment, port, stderr=stderr) as base:
            yield base


@contextlib.contextmanager
def running(
    command: list[str],
    environment: dict[str, str],
    port: int,
    *,
    cwd: Path = ROOT,
    stderr: Path | None = None,
) -> Iterator[str]:
    """Start the uvicorn `command` (in `cwd`) listening on `port`; yield its base URL once it
    answers /health; stop it (SIGINT, then kill) afterwards. `stderr`: a file to append to."""
    with contextlib.ExitStack() as files:
        err = files.enter_context(stderr.open("ab")) if stderr is not None else None
        process = subprocess.Popen(command, cwd=cwd, env=environment, stderr=err)
        yield from _until_stopped(process, port)


def _until_stopped(process: subprocess.Popen[bytes], port: int) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("uvicorn exited during startup")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("uvicorn did not come up")


async def seed_catalog(client: httpx.AsyncClient, *, grommets: int, widgets: int) -> None:
    """`grommets` grommets and `widgets` widgets of three parts each, created over HTTP."""
    for start in range(0, grommets, 50):
        items = [
            {"method": "POST", "path": "/grommets",
             "body": {"name": f"g{n}", "material": "brass", "diameter_mm": 1 + n % 20}}
            for n in range(start, min(start + 50, grommets))
        ]  # fmt: skip
        (await client.post("/batch", json={"requests": items})).raise_for_status()
    for start in range(0, widgets, 50):
        items = [
            {"method": "POST", "path": "/widgets",
             "body": {"name": f"w{n}", "parts": [
                 {"grommet_id": 1 + (n + k) % grommets, "quantity": k + 1} for k in range(3)]}}
            for n in range(start, min(start + 50, widgets))
        ]  # fmt: skip
        (await client.post("/batch", json={"requests": items})).raise_for_status()


async def median_seconds(action: Callable[[], Awaitable[object]], *, repeat: int) -> float:
    """The median wall time of `repeat` runs of `action` (after one warm-up run)."""
    await action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def server_ms(response: httpx.Response) -> float:
    """Database milliseconds reported by the response's Server-Timing header."""
    timing = response.headers.get("server-timing", "")
    for part in timing.split(";"):
        if part.startswith("dur="):
            return float(part[4:])
    return 0.0


def server_queries(response: httpx.Response) -> int:
    """Queries reported by the response's Server-Timing header."""
    timing = response.headers.get("server-timing", "")
    return int(timing.split('desc="')[1].split(" ")[0]) if 'desc="' in timing else -1
