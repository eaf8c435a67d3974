"""DATABASE_READ_URL against a real streaming replica made with pg_basebackup.

The primary and its standby both run from the PostgreSQL binaries pgserver ships; the test is
skipped (saying why) only when those binaries are absent.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from carpool.data import embedded, migrations
from carpool.data.engine import Database, asyncpg_dsn
from carpool.data.unit_of_work import UnitOfWork
from tests import probe_routes
from tests.conftest import make_container, wait_for_idle_pool
from tests.helpers import AUTH, create_app, served


@dataclass(frozen=True)
class Pair:
    primary_url: str
    replica_url: str


def _pg_bin() -> Path | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            import pgserver
        except ImportError:
            return None
    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"
    needed = ("pg_basebackup", "pg_ctl", "postgres")
    return bin_dir if all((bin_dir / name).exists() for name in needed) else None


def _run(command: list[str], *, user: str | None) -> None:
    # PostgreSQL refuses to run as root; pgserver runs its servers as the `pgserver` user.
    subprocess.run(command, check=True, capture_output=True, timeout=60, user=user)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A migrated primary and a hot standby streaming from it (a base backup of it)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        print("SKIPPED: pgserver's PostgreSQL binaries (pg_basebackup, pg_ctl) are absent")
        pytest.skip("pgserver's PostgreSQL binaries (pg_basebackup, pg_ctl) are absent")
    with tempfile.TemporaryDirectory(prefix="carpool-replica-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        server, primary_url = embedded.start_embedded(root / "primary", cleanup_mode="delete")
        try:
            migrations.upgrade_sync(primary_url)
            replica_url = _start_standby(bin_dir, root, server)
            try:
                yield Pair(primary_url, replica_url)
            finally:
                _run([str(bin_dir / "pg_ctl"), "-D", str(root / "replica"), "-m", "immediate",
                      "-w", "stop"], user=_server_user(server))  # fmt: skip
        finally:
            server.cleanup()


def _server_user(server: Any) -> str | None:
    return server.system_user if os.geteuid() == 0 else None


def _start_standby(bin_dir: Path, root: Path, server: Any) -> str:
    user = _server_user(server)
    replica, sockets = root / "replica", root / "replica-socket"
    for directory in (replica, sockets):
        directory.mkdir(mode=0o700)
        if user is not None:
            shutil.chown(directory, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    primary_socket = server.get_postmaster_info().socket_dir
    _run([str(bin_dir / "pg_basebackup"), "-h", str(primary_socket), "-U", "postgres",
          "-D", str(replica), "-X", "stream", "-R"], user=user)  # fmt: skip
    _run([str(bin_dir / "pg_ctl"), "-D", str(replica), "-w", "-l", str(replica / "log"),
          "-o", '-h ""', "-o", f"-k {sockets}", "start"], user=user)  # fmt: skip
    return f"postgresql+asyncpg://postgres:@/postgres?host={sockets}"


@pytest.fixture
async def replicated(pair: Pair) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """The app with DATABASE_READ_URL on the standby; no connection may leak."""
    container = make_container(pair.primary_url, database_read_url=pair.replica_url)
    app = create_app(container)
    app.blueprint(probe_routes.blueprint)
    async with served(app, headers=AUTH) as http:
        database: Database = container.database()
        yield http, database
        assert await wait_for_idle_pool(database) == 0, "a connection was leaked"


async def _caught_up(pair: Pair, *, timeout: float = 10.0) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(asyncpg_dsn(pair.primary_url))
    replica = await asyncpg.connect(asyncpg_dsn(pair.replica_url))
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        async with asyncio.timeout(timeout):
            while await replica.fetchval("SELECT pg_last_wal_replay_lsn()") < target:
                await asyncio.sleep(0.02)
    finally:
        await primary.close()
        await replica.close()


async def test_read_only_calls_read_from_the_replica_and_the_rest_from_the_primary(
    replicated: tuple[httpx.AsyncClient, Database],
) -> None:
    http, _ = replicated
    on_replica = {"in_recovery": True, "read_only": True}
    on_primary = {"in_recovery": False, "read_only": False}
    assert (await http.get("/_probe/role")).json() == on_replica
    assert (await http.post("/_probe/role")).json() == on_primary
    safe = await http.post(
        "/batch", json={"requests": [{"path": "/_probe/role"}, {"path": "/_probe/role"}]}
    )
    assert [item["body"] for item in safe.json()["responses"]] == [on_replica, on_replica]
    # A batch that may write is one unit on the primary, its reads included.
    mixed = await http.post(
        "/batch",
        json={"requests": [{"method": "POST", "path": "/_probe/role"}, {"path": "/_probe/role"}]},
    )
    assert [item["body"] for item in mixed.json()["responses"]] == [on_primary, on_primary]


async def test_a_write_is_read_back_from_the_replica_once_it_is_replayed(
    replicated: tuple[httpx.AsyncClient, Database], pair: Pair
) -> None:
    http, _ = replicated
    created = await http.post(
        "/grommets", json={"name": "replicated", "material": "brass", "diameter_mm": 6}
    )
    assert created.status_code == 201
    # Replica lag: a read in another call may not see the write until the standby replays it.
    await _caught_up(pair)
    read = await http.get(f"/grommets/{created.json()['id']}")
    assert read.status_code == 200
    assert read.content == created.content


async def test_a_write_attempted_by_a_read_only_call_is_refused_by_the_replica(
    replicated: tuple[httpx.AsyncClient, Database],
) -> None:
    http, _ = replicated
    response = await http.get("/_probe/write")
    assert response.status_code == 500


async def test_a_read_only_unit_asked_to_see_the_primary_reads_there_still_read_only(
    replicated: tuple[httpx.AsyncClient, Database],
) -> None:
    """What live answers use: a re-run after a committed change must not read a lagging copy."""
    _, database = replicated
    uow = UnitOfWork(database, read_only=True, on_primary=True)
    role = await uow.run(probe_routes._server_role)
    await uow.finish(commit=False)
    assert role == {"in_recovery": False, "read_only": True}


async def test_a_call_that_sends_back_a_writes_position_reads_it_even_while_the_replica_lags(
    replicated: tuple[httpx.AsyncClient, Database], pair: Pair
) -> None:
    http, _ = replicated
    standby = await asyncpg.connect(asyncpg_dsn(pair.replica_url))
    await standby.execute("SELECT pg_wal_replay_pause()")  # lag, made certain
    try:
        created = await http.post(
            "/grommets", json={"name": "read-your-write", "material": "brass", "diameter_mm": 6}
        )
        assert created.status_code == 201
        position = created.headers["carpool-committed-at"]
        path = f"/grommets/{created.json()['id']}"
        lagging = await http.get(path)
        mine = await http.get(path, headers={"carpool-read-after": position})
        batch = await http.post(
            "/batch", json={"load": [path]}, headers={"carpool-read-after": position}
        )
        assert "carpool-committed-at" not in mine.headers  # reads commit nothing
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()
    assert lagging.status_code == 404, "without it, the lagging replica answers"
    assert mine.status_code == 200 and mine.content == created.content
    assert batch.json()["responses"][0]["status"] == 200
