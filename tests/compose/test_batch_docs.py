"""Every example in docs/batch.md, run in order against the demo data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.seed import seed_demo_rows

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "batch.md"
_BLOCK = re.compile(r"```json (example|answer)\n(.*?)```", re.DOTALL)


def _examples() -> list[tuple[Any, Any]]:
    blocks = _BLOCK.findall(GUIDE.read_text())
    requests = [orjson.loads(text) for kind, text in blocks if kind == "example"]
    answers = [orjson.loads(text) for kind, text in blocks if kind == "answer"]
    assert len(requests) == len(answers) >= 4
    return list(zip(requests, answers, strict=True))


def _mask_timestamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "…" if k in ("created_at", "updated_at", "etag") else _mask_timestamps(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_timestamps(v) for v in value]
    return value


async def test_every_batch_example_in_the_guide_answers_as_documented(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.begin() as conn:
        await seed_demo_rows(conn)
    assert (await client.get("/batch")).json() == {"max_items": 50, "timeout_s": 30.0}
    for envelope, documented in _examples():
        response = await client.post("/batch", json=envelope)
        assert response.status_code == 200
        assert _mask_timestamps(response.json()) == documented
    # The atomic example changed nothing; the non-atomic one deleted widget 2.
    assert (await client.get("/grommets/1")).json()["material"] == "brass"
    assert (await client.get("/widgets/2")).status_code == 404
