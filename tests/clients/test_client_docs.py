"""Every client example of the docs and the README runs verbatim against a real uvicorn on the
demo data and prints what the text says (Python in a subprocess, JavaScript in Node.js)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.seed import seed_demo_rows
from tests.e2e.live_server import LiveServer
from tests.e2e.test_websocket_uvicorn import node_command
from tests.helpers import token

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/clients.md", "docs/batch.md", "docs/websocket.md", "docs/live.md")
_BLOCK = re.compile(r"```(\w+) (client-example|client-output)\n(.*?)```", re.DOTALL)
_BASE = "http://127.0.0.1:8000"
_PASTE = "paste the token `make run` printed"
MODULE = ROOT / "clients" / "browser" / "carpool.js"


def examples() -> list[tuple[str, str, str, str]]:
    """(where, language, code, the output that follows it) of every client example."""
    found: list[tuple[str, str, str, str]] = []
    for name in DOCS:
        for language, kind, text in _BLOCK.findall((ROOT / name).read_text()):
            if kind == "client-example":
                found.append((f"{name}#{len(found)}", language, text, ""))
            else:
                where, language_of, code, _ = found[-1]
                found[-1] = (where, language_of, code, text)
    return found


EXAMPLES = [pytest.param(*example, id=example[0]) for example in examples()]


def test_every_doc_has_its_client_examples() -> None:
    found = examples()
    assert {where.split("#")[0] for where, *_ in found} == set(DOCS)
    assert all(output for *_, output in found), "every example says what it prints"


async def _run(command: list[str], server: LiveServer) -> str:
    env = {**os.environ, "TOKEN": token(sub="demo")}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize(("where", "language", "code", "output"), EXAMPLES)
async def test_the_example_prints_what_the_docs_say(
    server: LiveServer,
    admin_engine: AsyncEngine,
    tmp_path: Path,
    where: str,
    language: str,
    code: str,
    output: str,
) -> None:
    async with admin_engine.begin() as conn:
        await seed_demo_rows(conn)
    code = code.replace(_BASE, server.http_url)
    if language == "python":
        printed = await _run([sys.executable, "-c", code], server)
    else:
        node = node_command()
        if node is None:
            pytest.skip("needs Node.js with a global WebSocket to run the browser examples")
        script = tmp_path / "example.mjs"
        prelude = f"globalThis.location = new URL({server.http_url + '/'!r});\n"
        code = code.replace('"/client.js"', repr(MODULE.as_uri())).replace(
            _PASTE, token(sub="demo")
        )
        script.write_text(prelude + code)
        printed = await _run([*node, str(script)], server)
    assert printed == output, where
