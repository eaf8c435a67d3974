"""The README tells the truth: its tour runs as shown, its configuration table is complete."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.seed import seed_demo_rows
from carpool.settings import Settings
from tests.helpers import token

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _tour(token: str) -> list[list[str]]:
    block = README.split("## A 30-second tour", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    block = block.replace("$TOKEN", token)  # as the shell would, after `export TOKEN=...`
    return [shlex.split(line) for line in block.splitlines() if line.startswith("curl")]


def _headers(words: list[str]) -> dict[str, str]:
    given = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    return {name.strip(): value.strip() for name, _, value in (h.partition(":") for h in given)}


async def test_every_tour_command_answers_as_the_readme_says(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.begin() as conn:
        await seed_demo_rows(conn)
    statuses = []
    for words in _tour(token(sub="demo")):
        method = next((w[2:] for w in words if w.startswith("-X")), "GET")
        url = next(w for w in words if w.startswith(("localhost:8000", "'localhost:8000")))
        url = url.strip("'")
        data = words[words.index("-d") + 1] if "-d" in words else None
        # The tour's own headers only: the test client's default credentials are left out.
        headers = {"authorization": "", **_headers(words)}
        response = await client.request(
            method, url.removeprefix("localhost:8000"), content=data, headers=headers
        )
        if headers["authorization"]:  # /health opens no unit of work, a 401 touches no data
            assert "server-timing" in response.headers
        statuses.append(response.status_code)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert statuses == [200, 401, 201, 200, 404, 200, 200]


def test_the_configuration_table_lists_every_setting() -> None:
    table = README.split("## Configuration", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert {name.upper() for name in Settings.model_fields} <= documented
