"""The curl and Python examples of docs/security.md run as shown, against a real uvicorn."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.live_server import ROOT, LiveServer, live_server
from tests.helpers import AUTH, TEST_SECRET

DOC = (ROOT / "docs" / "security.md").read_text()
ENV = {**os.environ, "AUTH_JWT_SECRET": TEST_SECRET, "DATABASE_URL": "postgresql://unused/x"}
ENV["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{ENV.get('PATH', '')}"


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[LiveServer]:
    async with live_server("asgi:app", {"DATABASE_URL": database_url}) as live:
        async with httpx.AsyncClient(base_url=live.http_url, headers=AUTH) as http:
            body = {"name": "M6", "material": "brass", "diameter_mm": 6}
            assert (await http.post("/grommets", json=body)).status_code == 201
        yield live


async def run(command: list[str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=ENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_curl_examples_answer_as_commented(server: LiveServer) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    block = DOC.split("## Answers", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    script = block.replace("localhost:8000", f"127.0.0.1:{server.port}")
    statuses = []
    for line in script.splitlines():
        command, _, expected = line.partition("#")
        if not command.startswith("curl"):
            continue
        status_line = f"{command} -o /dev/null -w '%{{http_code}}\\n'".replace(" -i ", " ")
        statuses.append((expected.strip(), status_line))
    setup = "\n".join(line for line in script.splitlines() if line.startswith("TOKEN="))
    for expected, command in statuses:
        printed = await run(["bash", "-c", f"set -e\n{setup}\n{command}"])
        assert printed.strip() == expected.split()[0], (command, printed)


async def test_the_python_example_prints_what_its_comments_say(server: LiveServer) -> None:
    code = DOC.split("Python (`httpx`):", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace("http://127.0.0.1:8000", server.http_url)
    expected = [m.group(1).split(";")[0] for m in re.finditer(r"# (.+)$", code, re.M)]
    printed = (await run([sys.executable, "-c", code])).splitlines()
    assert [line.strip() for line in printed] == [e.split(":")[0].strip() for e in expected]
