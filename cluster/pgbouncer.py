"""Debian's PgBouncer (1.18 on Debian 12), started by a test in front of a PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cluster.postgres import RUN_AS, Missing, as_server_user, free_port
from cluster.processes import wait_for_port


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer on 127.0.0.1:`port`; `version` as it reports it."""

    port: int
    version: str

    def url(self, user: str, database: str = "carpool") -> str:
        """A `postgresql+asyncpg://` URL of `database` through the pooler."""
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"


def pgbouncer_binary() -> str:
    """The pgbouncer executable (Missing if not installed)."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise Missing("PgBouncer is not installed (apt-get install pgbouncer; make test does)")
    return found


@contextmanager
def pgbouncer(
    *, host: str, port: int, users: list[str], pool_mode: str = "transaction"
) -> Iterator[PgBouncer]:
    """PgBouncer in `pool_mode` before the server at `host`:`port` (any database), trusting
    `users`; stopped when the block ends."""
    binary = pgbouncer_binary()
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    with tempfile.TemporaryDirectory(prefix="carpool-pgbouncer-") as tmp:
        root = Path(tmp)
        listen = free_port()
        (root / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
        (root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {listen}\n"
            f"unix_socket_dir =\nauth_type = trust\nauth_file = {root / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\nmax_client_conn = 500\ndefault_pool_size = 20\n"
            f"logfile = {root / 'log'}\npidfile = {root / 'pid'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(root, RUN_AS)
            for path in root.iterdir():
                shutil.chown(path, RUN_AS)
        process = subprocess.Popen(
            as_server_user([binary, str(root / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(listen, process, what="pgbouncer", log=root / "log")
            yield PgBouncer(listen, version)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
