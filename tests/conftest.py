"""Fixtures: one real PostgreSQL and one app per test session; every test starts on empty tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from container import Container
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from carpool.catalog.models import metadata
from carpool.data import embedded, migrations
from carpool.data.engine import Database, open_database
from carpool.data.idempotency import metadata as idempotency_metadata
from carpool.data.unit_of_work import UnitOfWork
from carpool.settings import Settings
from tests import probe_routes
from tests.helpers import AUTH, TEST_SECRET, create_app
from tests.websocket_support import AsgiSocket

# Every table of the schema, dependents first: nothing to keep in step by hand.
TABLE_NAMES = tuple(
    table.name
    for schema in (metadata, idempotency_metadata)
    for table in reversed(schema.sorted_tables)
)
TABLES = ", ".join(TABLE_NAMES)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """TEST_DATABASE_URL, or a throwaway embedded PostgreSQL; migrated to head."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        url = Settings(database_url=configured).database_url
        assert url is not None
        migrations.upgrade_sync(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="carpool-test-") as tmp:
        server, url = embedded.start_embedded(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            migrations.upgrade_sync(url)
            yield url
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
async def admin_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of the tests' own, outside the app, to look at and reset the database."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


def make_container(database_url: str, **overrides: Any) -> Container:
    """A Container on the test database with settings overridden as the test needs."""
    container = Container()
    overrides.setdefault("auth_jwt_secret", TEST_SECRET)
    settings = Settings(database_url=database_url, seed_demo_data=False, **overrides)
    container.settings.override(providers.Object(settings))
    return container


@pytest.fixture(scope="session")
async def container(database_url: str) -> Container:
    return make_container(database_url)


@pytest.fixture(scope="session")
async def app(container: Container) -> AsyncIterator[Any]:
    application = create_app(container)
    application.blueprint(probe_routes.blueprint)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture(scope="session")
async def session_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carpool.test", headers=AUTH
    ) as http:
        yield http


@pytest.fixture
async def client(
    session_client: httpx.AsyncClient, engine: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI; after the test, its pool must have nothing checked out."""
    yield session_client
    assert await wait_for_idle_pool(engine) == 0, "a connection was leaked"


@pytest.fixture
async def socket(app: Any, client: httpx.AsyncClient) -> AsyncIterator[AsgiSocket]:
    """A WebSocket to the session app, left at the end; `client` then checks the pool is idle."""
    opened = await AsgiSocket(app).open()
    yield opened
    opened.leave()
    await opened.ended()


@pytest.fixture(scope="session")
async def engine(app: Any, container: Container) -> Database:
    """The app's own database (its asyncpg pools, to inspect them)."""
    resolved: Database = container.database()
    return resolved


@contextlib.asynccontextmanager
async def own_database(database_url: str, *, max_size: int) -> AsyncIterator[Database]:
    """A database (pools) of the test's own, to inspect in isolation; closed afterwards, and
    nothing may be left checked out."""
    database = await open_database(database_url, max_size=max_size, acquire_timeout_s=5)
    try:
        yield database
        assert database.checked_out() == 0, "a connection was leaked"
    finally:
        await database.close()


async def wait_for_idle_pool(engine: Database, timeout: float = 5.0) -> int:
    """Checked-out connections once they have had `timeout` seconds to come back."""
    deadline = asyncio.get_running_loop().time() + timeout
    while engine.checked_out() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return int(engine.checked_out())


@pytest.fixture(autouse=True)
async def clean_database(admin_engine: AsyncEngine) -> None:
    """Every test starts on empty tables."""
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


async def count(admin_engine: AsyncEngine, table: str, where: str = "true") -> int:
    """Rows of `table` matching `where`, seen from outside the app."""
    async with admin_engine.connect() as conn:
        result = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"))
        return int(result.scalar_one())


OpenUnit = Callable[..., Awaitable[UnitOfWork]]


@pytest.fixture
async def open_uow(container: Container, engine: Database) -> AsyncIterator[OpenUnit]:
    """Units of work from the app's own factory; rolled back and checked for leaks after."""
    opened: list[UnitOfWork] = []

    async def open_one(**overrides: Any) -> UnitOfWork:
        uow: UnitOfWork = container.unit_of_work(read_only=False, **overrides)
        opened.append(uow)
        return uow

    yield open_one
    for uow in opened:
        await uow.finish(commit=False)
    assert await wait_for_idle_pool(engine) == 0, "a connection was leaked"
