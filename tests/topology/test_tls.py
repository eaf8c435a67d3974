"""carpool against a PostgreSQL that only takes TLS: every connection (the pools, the LISTEN
connection, the migrations) honours the URL's `sslmode` and `sslrootcert`."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from cluster.postgres import DebianPostgres, Tls, debian_postgres, make_tls

from carpool.data import migrations
from carpool.data.engine import asyncpg_dsn
from tests.conftest import make_container
from tests.helpers import AUTH, create_app, grommet_body, served
from tests.topology.skips import unless_missing
from tests.websocket_support import AsgiSocket


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[DebianPostgres, Tls]]:
    with unless_missing(), debian_postgres(tls=True) as (server, tls):
        migrations.upgrade_sync(server.url("sslmode=require"))
        yield server, tls


async def _ssl_sessions(server: DebianPostgres, tls: Tls) -> dict[str, bool]:
    """application_name -> whether its session is encrypted, for every carpool session."""
    conn = await asyncpg.connect(asyncpg_dsn(server.url(f"sslmode=verify-ca&sslrootcert={tls.ca}")))
    try:
        rows = await conn.fetch(
            "SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s"
            " USING (pid) WHERE a.datname = 'carpool' AND a.pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return {row["application_name"]: row["ssl"] for row in rows}


async def test_a_server_that_only_takes_tls_refuses_a_plain_connection(
    tls_server: tuple[DebianPostgres, Tls],
) -> None:
    server, _ = tls_server
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await asyncpg.connect(asyncpg_dsn(server.url("sslmode=disable")))


@pytest.mark.parametrize("mode", ["require", "verify-full"])
async def test_http_and_live_answers_work_over_tls(
    tls_server: tuple[DebianPostgres, Tls], mode: str
) -> None:
    server, tls = tls_server
    query = f"sslmode={mode}" + (f"&sslrootcert={tls.ca}" if mode == "verify-full" else "")
    url = server.url(query, host="localhost" if mode == "verify-full" else "127.0.0.1")
    app = create_app(make_container(url))
    async with served(app, headers=AUTH) as client:
        assert (await client.get("/ready")).json()["status"] == "ready"
        made = (await client.post("/grommets", json=grommet_body(f"tls-{mode}"))).json()
        ws = await AsgiSocket(app).open()
        ws.send({"type": "subscribe", "id": "s", "path": f"/grommets/{made['id']}"})
        first = await ws.answer()
        assert first["status"] == 200, first
        await client.patch(f"/grommets/{made['id']}", json={"material": "steel"})
        pushed = await ws.answer()
        assert pushed["status"] == 200 and pushed["body"]["material"] == "steel"
        sessions = await _ssl_sessions(server, tls)
        assert sessions.get("carpool-listen") is True, sessions
        assert sessions and all(sessions.values()), sessions
        ws.leave()
        await ws.ended()


async def test_verify_full_refuses_a_server_whose_certificate_another_ca_signed(
    tls_server: tuple[DebianPostgres, Tls],
) -> None:
    server, _ = tls_server
    with tempfile.TemporaryDirectory() as tmp:
        stranger = make_tls(Path(tmp))
        dsn = asyncpg_dsn(
            server.url(f"sslmode=verify-full&sslrootcert={stranger.ca}", host="localhost")
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.wait_for(asyncpg.connect(dsn), 10)
