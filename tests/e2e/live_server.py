"""A real uvicorn process on 127.0.0.1, serving an app of this repository, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    """A running uvicorn: its addresses, its process and its log."""

    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    final_log: str | None = None

    def log(self) -> str:
        """What uvicorn printed (kept after the process and its log file are gone)."""
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(errors="replace")

    async def stop(self, *, timeout: float = 20.0) -> int:
        """SIGTERM (uvicorn's graceful shutdown); the exit status, or -9 if it had to be killed."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                status = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            status = -9
        if self.final_log is None:
            self.final_log = self.log()
        return status


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def live_server(
    app: str,
    env: Mapping[str, str],
    *,
    startup_timeout: float = 60.0,
    args: Sequence[str] = (),
    port: int | None = None,
) -> AsyncIterator[LiveServer]:
    """`uvicorn app` on `port` (by default a free one) with `env` added to the environment and
    uvicorn's `args` (e.g. `--workers 2`); stopped on exit."""
    port = port or _free_port()
    with tempfile.NamedTemporaryFile(prefix="carpool-uvicorn-", suffix=".log") as log:
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--log-level", "warning", *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING", "AUTH_JWT_SECRET": TEST_SECRET, **env},
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        server = LiveServer(process, port, Path(log.name))
        try:
            await _wait_until_serving(server, startup_timeout)
            yield server
        finally:
            await server.stop()


async def _wait_until_serving(server: LiveServer, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        while asyncio.get_running_loop().time() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"uvicorn exited at start:\n{server.log()}")
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"uvicorn did not answer within {timeout} s:\n{server.log()}")


@asynccontextmanager
async def checked_server(app: str, database_url: str) -> AsyncIterator[LiveServer]:
    """`uvicorn app` on the test database; afterwards its log must hold no traceback."""
    async with live_server(app, {"DATABASE_URL": database_url}) as live:
        yield live
    assert "Traceback" not in live.log(), live.log()
