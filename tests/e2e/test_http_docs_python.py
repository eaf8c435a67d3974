"""The Python example of docs/http.md, run against a real uvicorn."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.seed import seed_demo_rows
from tests.conftest import count
from tests.e2e.live_server import LiveServer
from tests.helpers import token

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "http.md").read_text()


def _example() -> dict[str, Any]:
    code = GUIDE.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/http.md", "exec"), namespace)
    return namespace


async def test_the_python_example_runs_as_the_guide_says(
    server: LiveServer, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.begin() as conn:
        await seed_demo_rows(conn)
    example = _example()
    base = server.http_url
    key = token()

    changed = await asyncio.to_thread(example["change_material"], base, key, 1, "steel")
    assert changed["material"] == "steel"

    grommet = {"name": "M20", "material": "brass", "diameter_mm": 20}
    first = await asyncio.to_thread(example["create_once"], base, key, grommet, "doc-key")
    again = await asyncio.to_thread(example["create_once"], base, key, grommet, "doc-key")
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert await count(admin_engine, "grommets", "name = 'M20'") == 1

    etag = first.headers["etag"]
    location = first.headers["location"]
    fresh = await asyncio.to_thread(example["revalidate"], base, key, location, etag)
    assert fresh.status_code == 304
