"""schemathesis against a live uvicorn serving the app: every check, bounded examples, no failure.

The examples are bounded so that the run takes well under two minutes on a 2-core machine;
`SCHEMATHESIS_MAX_EXAMPLES` and `SCHEMATHESIS_SEED` widen or vary it (a fixed seed by default,
so that a failure reproduces).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.e2e.live_server import live_server
from tests.fake_inventory import fake_inventory
from tests.helpers import AUTH

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261201")
RUN_TIMEOUT_S = 300


async def test_schemathesis_finds_no_failure_in_any_operation(database_url: str) -> None:
    async with fake_inventory() as inventory:
        inventory.default_stock = 1000
        env = {"DATABASE_URL": database_url, "INVENTORY_URL": inventory.url}
        async with live_server("asgi:app", env) as live:
            command = [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(CONFIG),
                "--no-color",
                "run",
                f"{live.http_url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
                # One worker: hypothesis changes the recursion limit while it generates, and
                # CPython 3.11's ast.parse in a second thread then fails at random ("AST
                # constructor recursion depth mismatch"), an error of the tool, not of carpool.
                "--workers",
                "1",
                # Every catalog route needs a token (docs/security.md): a full-scope one.
                "--header",
                f"Authorization: {AUTH['authorization']}",
            ]
            run = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            async with asyncio.timeout(RUN_TIMEOUT_S):
                output, _ = await run.communicate()
    report = output.decode(errors="replace")
    assert run.returncode == 0, report
    assert "Traceback" not in live.log(), live.log()
