"""carpool behind Debian's PgBouncer (1.18) in transaction pooling: the catalog, batches,
frames and live answers through it, with read-only units still refused writes by the
database (the role's defaults, DB_SESSION_DEFAULTS=role) and no prepared statements kept
(DB_STATEMENT_CACHE_SIZE=0)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from cluster.pgbouncer import PgBouncer, pgbouncer
from cluster.postgres import DebianPostgres, app_role_sql, debian_postgres

from carpool.data import migrations
from carpool.data.engine import asyncpg_dsn
from carpool.data.sql import Connection
from carpool.data.unit_of_work import UnitOfWork
from tests.conftest import make_container
from tests.helpers import AUTH, create_app, grommet_body, grommet_item, served
from tests.topology.skips import unless_missing
from tests.websocket_support import AsgiSocket

APP_ROLE = "carpool_app"
ROLE_SETUP = app_role_sql(APP_ROLE)


@pytest.fixture(scope="module")
def topology() -> Iterator[tuple[DebianPostgres, PgBouncer]]:
    with unless_missing(), debian_postgres(tls=False) as (server, _):
        migrations.upgrade_sync(server.url())

        async def setup() -> None:
            conn = await asyncpg.connect(asyncpg_dsn(server.url()))
            try:
                await conn.execute(ROLE_SETUP)
            finally:
                await conn.close()

        asyncio.run(setup())
        with (
            unless_missing(),
            pgbouncer(host="127.0.0.1", port=server.port, users=["carpool", APP_ROLE]) as bouncer,
        ):
            yield server, bouncer


def behind_pgbouncer(server: DebianPostgres, bouncer: PgBouncer) -> Any:
    """A container with the settings docs/deployment.md gives for PgBouncer < 1.20 in
    transaction pooling."""
    direct = server.url().replace("//carpool@", f"//{APP_ROLE}@")
    return make_container(
        bouncer.url(APP_ROLE),
        database_listen_url=direct,  # LISTEN needs a session of its own
        db_session_defaults="role",
        db_statement_cache_size=0,
    )


async def test_pgbouncer_1_18_refuses_the_read_only_startup_parameter(
    topology: tuple[DebianPostgres, PgBouncer],
) -> None:
    _, bouncer = topology
    with pytest.raises(asyncpg.PostgresError, match="unsupported startup parameter"):
        await asyncpg.connect(
            asyncpg_dsn(bouncer.url(APP_ROLE)),
            server_settings={"default_transaction_read_only": "on"},
        )


async def test_catalog_batches_frames_and_live_answers_through_pgbouncer(
    topology: tuple[DebianPostgres, PgBouncer],
) -> None:
    server, bouncer = topology
    app = create_app(behind_pgbouncer(server, bouncer))
    async with served(app, headers=AUTH) as http:
        assert (await http.get("/ready")).json()["status"] == "ready"
        made = await http.post("/grommets", json=grommet_body("through-bouncer"))
        assert made.status_code == 201, made.text
        gid = made.json()["id"]
        # Many calls at once: server connections are shared between them, statement by
        # statement; nothing prepared may be left behind for another.
        reads = await asyncio.gather(*(http.get(f"/grommets/{gid}") for _ in range(40)))
        assert {r.status_code for r in reads} == {200}
        batch = await http.post(
            "/batch",
            json={"atomic": True, "requests": [grommet_item(f"b{n}") for n in range(3)]},
        )
        assert [i["status"] for i in batch.json()["responses"]] == [201] * 3, batch.text
        ws = await AsgiSocket(app).open()
        ws.send({"id": "f", "method": "POST", "path": "/grommets", "body": grommet_body("frame")})
        assert (await ws.answer())["status"] == 201
        ws.send({"type": "subscribe", "id": "s", "path": f"/grommets/{gid}"})
        assert (await ws.answer())["body"]["material"] == "brass"
        patched = await http.patch(f"/grommets/{gid}", json={"material": "steel"})
        assert patched.status_code == 200, patched.text
        pushed = await ws.answer()
        assert pushed["status"] == 200 and pushed["body"]["material"] == "steel"
        ws.leave()
        await ws.ended()
        listed = await http.get("/grommets?limit=100")
        assert len(listed.json()["items"]) == 5


async def _write(conn: Connection) -> None:
    await conn.execute("INSERT INTO grommets (name, material, diameter_mm) VALUES ('x', 'y', 1)")


async def _show(conn: Connection, name: str) -> Any:
    return await conn.value(f"SHOW {name}")


async def test_read_only_units_cannot_write_through_pgbouncer_and_the_deadline_holds(
    topology: tuple[DebianPostgres, PgBouncer],
) -> None:
    server, bouncer = topology
    container = behind_pgbouncer(server, bouncer)
    app = create_app(container)
    async with served(app, headers=AUTH):
        database = container.database()
        for _ in range(5):  # whichever server connection the pooler hands out
            unit = UnitOfWork(database, read_only=True)
            try:
                with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                    await unit.run(_write)
            finally:
                await unit.finish(commit=False)
        unit = UnitOfWork(database, read_only=True)
        try:
            assert await unit.run(_show, "statement_timeout") == "15s"
        finally:
            await unit.finish(commit=False)


async def test_a_role_whose_sessions_may_write_by_default_is_refused_clearly(
    topology: tuple[DebianPostgres, PgBouncer], caplog: pytest.LogCaptureFixture
) -> None:
    _, bouncer = topology
    caplog.set_level("WARNING", logger="carpool.data")
    app = create_app(
        make_container(
            bouncer.url("carpool"), db_session_defaults="role", db_statement_cache_size=0
        )
    )
    async with served(app, headers=AUTH) as http:
        refused = await http.get("/grommets")
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"] == "urn:carpool:problem:database-unavailable"
    said = [r.getMessage() for r in caplog.records if r.name == "carpool.data"]
    assert any("ALTER ROLE" in line for line in said), said
