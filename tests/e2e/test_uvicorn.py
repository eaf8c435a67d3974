"""End to end: `uvicorn asgi:app` on an embedded PostgreSQL, over real HTTP, stopped cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    data_dir: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_healthy(server: Server) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2.0) as http:
        while True:
            if server.process.poll() is not None:
                pytest.fail(f"uvicorn exited early:\n{server.log.read_text()}")
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"uvicorn did not become healthy:\n{server.log.read_text()}")
            await asyncio.sleep(0.1)


async def stop(server: Server, sig: signal.Signals) -> int:
    server.process.send_signal(sig)
    deadline = asyncio.get_running_loop().time() + SHUTDOWN_TIMEOUT_S
    while (code := server.process.poll()) is None:
        if asyncio.get_running_loop().time() > deadline:
            server.process.kill()
            pytest.fail(f"uvicorn did not stop on {sig.name}:\n{server.log.read_text()}")
        await asyncio.sleep(0.05)
    return code


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """uvicorn serving asgi:app on a free port, with no DATABASE_URL (so, embedded)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "database_url"}}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, f"http://127.0.0.1:{port}", log, tmp_path / "data")
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def cli(server: Server, *args: str) -> str:
    """What `.venv/bin/carpool *args` prints, run against the server's DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if k.upper() != "DATABASE_URL"}
    env["DATA_DIR"] = str(server.data_dir)
    carpool = Path(sys.executable).parent / "carpool"
    done = subprocess.run(
        [str(carpool), *args], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_serves_the_catalog_over_http_and_stops_cleanly(
    server: Server, sig: signal.Signals
) -> None:
    await wait_until_healthy(server)
    # The token `make run` prints: signed with the secret the server made under DATA_DIR.
    demo_token = cli(server, "demo-token").split("export TOKEN=", 1)[1].strip()
    headers = {"authorization": f"Bearer {demo_token}"}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0, headers=headers) as http:
        assert (await http.get("/grommets", headers={"authorization": ""})).status_code == 401
        demo = (await http.get("/grommets")).json()
        assert [g["name"] for g in demo["items"]] == ["M4 brass", "M6 brass", "M8 steel"]

        grommet = await http.post(
            "/grommets", json={"name": "M10 e2e", "material": "nylon", "diameter_mm": 10}
        )
        assert grommet.status_code == 201, grommet.text
        gid = grommet.json()["id"]
        widget = await http.post(
            "/widgets", json={"name": "e2e hinge", "parts": [{"grommet_id": gid, "quantity": 3}]}
        )
        assert widget.status_code == 201, widget.text
        assert widget.headers["server-timing"].startswith("db;dur=")

        fetched = await http.get(widget.headers["location"], params={"include": "grommets"})
        assert fetched.status_code == 200
        assert fetched.json()["name"] == "e2e hinge"
        assert fetched.json()["parts"] == [{"grommet": grommet.json(), "quantity": 3}]

        reader = {"authorization": f"Bearer {cli(server, 'token', '--scope', 'catalog:read')}"}
        assert (await http.get("/widgets", headers=reader)).status_code == 200
        assert (await http.delete(widget.headers["location"], headers=reader)).status_code == 403

        missing = await http.get("/widgets/999999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    # After a graceful shutdown, uvicorn re-raises the signal it caught, so the exit status is
    # what a caller expects: SIGINT becomes KeyboardInterrupt (status 0), SIGTERM kills (-15).
    assert await stop(server, sig) == (0 if sig == signal.SIGINT else -signal.SIGTERM)
    log = server.log.read_text()
    assert "Application shutdown complete." in log, log
    assert "Finished server process" in log, log
    assert "Traceback" not in log, log
    # Shutdown released the resources: the embedded PostgreSQL was stopped with the app.
    assert not (server.data_dir / "pg" / "postmaster.pid").exists(), log


def test_bad_configuration_stops_uvicorn_with_one_line_naming_the_variable() -> None:
    env = {**os.environ, "DB_POOL_SIZE": "0", "BATCH_TIMEOUT_S": "soon"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "asgi:app", "--port", "1"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "carpool: invalid configuration: DB_POOL_SIZE" in result.stderr
    assert "BATCH_TIMEOUT_S" in result.stderr
