"""Every example of docs/live.md, run against a real uvicorn: the Python client and the frames."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from carpool.catalog.seed import seed_demo_rows
from tests.e2e.live_server import LiveServer
from tests.helpers import AUTH, token

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "live.md"
_BLOCK = re.compile(r"```(\w+) ([\w-]+)\n(.*?)```", re.DOTALL)
_MASKED = ("created_at", "updated_at", "etag", "next", "link")


def blocks(kind: str) -> list[str]:
    return [text for _, name, text in _BLOCK.findall(GUIDE.read_text()) if name == kind]


def mask(value: Any) -> Any:
    """Values that differ from run to run (clocks, hashes, cursors) as "…"."""
    if isinstance(value, dict):
        return {k: "…" if k in _MASKED and v else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


async def test_the_python_client_prints_what_the_guide_says(server: LiveServer) -> None:
    (code,) = blocks("live-client")
    (expected,) = blocks("live-client-output")
    code = code.replace("http://127.0.0.1:8000", server.http_url)
    env = {**os.environ, "TOKEN": token(sub="guide")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode() == expected


async def test_every_frame_of_the_guide_answers_as_documented(
    server: LiveServer, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.begin() as conn:
        await seed_demo_rows(conn)
    steps = [
        (kind, orjson.loads(text))
        for kind, name, text in _BLOCK.findall(GUIDE.read_text())
        if kind == "json" and name in ("send", "receive", "write")
        for kind in [name]
    ]
    assert [kind for kind, _ in steps].count("receive") >= 4
    async with (
        httpx.AsyncClient(base_url=server.http_url, headers=AUTH) as http,
        connect(server.ws_url, additional_headers=AUTH) as ws,
    ):
        for kind, value in steps:
            if kind == "send":
                await ws.send(orjson.dumps(value).decode())
            elif kind == "write":
                response = await http.request(value["method"], value["path"], json=value["body"])
                assert response.status_code < 300
            else:
                received = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
                assert mask(received) == value
