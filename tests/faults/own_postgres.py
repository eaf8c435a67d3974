"""A PostgreSQL server of a test's own, from the binaries bundled in pgserver, to stop and start."""

from __future__ import annotations

import asyncio
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carpool.data import embedded, migrations


@dataclass
class OwnPostgres:
    """A migrated server on a Unix socket; `stop()` (fast shutdown) and `start()` it at will."""

    server: Any
    url: str
    socket_dir: Path

    def _pg_ctl(self, args: list[str]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # pgserver defines its command functions at import time (_commands._init).
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(args, pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    async def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, their transactions rolled back."""
        await asyncio.to_thread(self._pg_ctl, ["-w", "-m", "fast", "stop"])

    async def start(self) -> None:
        """Start it again on the same socket, as pgserver first started it."""
        options = ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log)]
        await asyncio.to_thread(self._pg_ctl, ["-w", *options, "start"])


@asynccontextmanager
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    """A fresh server, migrated to head, deleted when the block ends."""
    with tempfile.TemporaryDirectory(prefix="carpool-fault-pg-") as tmp:
        server, url = await asyncio.to_thread(
            embedded.start_embedded, Path(tmp) / "pg", cleanup_mode="delete"
        )
        try:
            await migrations.upgrade(url)
            socket_dir = Path(server.get_uri().split("host=", 1)[1].split("&", 1)[0])
            yield OwnPostgres(server, url, socket_dir)
        finally:
            await asyncio.to_thread(server.cleanup)
