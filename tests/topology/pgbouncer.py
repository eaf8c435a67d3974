"""Debian's PgBouncer (1.18 on Debian 12), started by a test in front of a PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.topology.debian_postgres import RUN_AS, as_server_user, free_port


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer on 127.0.0.1:`port`; `version` as it reports it."""

    port: int
    version: str

    def url(self, user: str, database: str = "carpool") -> str:
        """A `postgresql+asyncpg://` URL of `database` through the pooler."""
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"


def pgbouncer_binary() -> str:
    """The pgbouncer executable, or skip saying why."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        pytest.skip("PgBouncer is not installed (apt-get install pgbouncer; make test does)")
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
            _wait_for(listen, process, root / "log")
            yield PgBouncer(listen, version)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited at start: {text[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen within 15 s")
