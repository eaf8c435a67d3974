"""The composition root: every long-lived object of carpool and how it is made."""

from __future__ import annotations

from dependency_injector import containers, providers

from carpool.auth import setup as auth_setup
from carpool.auth.rate_limits import RateLimits
from carpool.catalog.seed import seed_demo_rows
from carpool.data import changes, embedded
from carpool.data.engine import Database, SessionPolicy, pools_resource
from carpool.data.unit_of_work import UnitOfWork
from carpool.observability.tracing import tracer_provider_resource
from carpool.settings import load_settings
from carpool.upstream import inventory


class Container(containers.DeclarativeContainer):
    """Settings, the database, a UnitOfWork factory (one per request), tracing, upstreams."""

    settings = providers.Singleton(load_settings)

    database_url = providers.Resource(
        embedded.database_url,
        settings.provided.database_url,
        data_dir=settings.provided.data_dir,
        seed=providers.Callable(
            lambda enabled: seed_demo_rows if enabled else None,
            settings.provided.seed_demo_data,
        ),
    )

    # The database exists before its pools, so a unit of work is made without an await
    # (an async dependency would cost an asyncio.gather per call).
    database = providers.Singleton(
        Database,
        acquire_timeout_s=settings.provided.db_pool_timeout_s,
        statement_cache_size=settings.provided.db_statement_cache_size,
        session=providers.Factory(
            SessionPolicy,
            statement_timeout_s=settings.provided.db_statement_timeout_s,
            defaults=settings.provided.db_session_defaults,
        ),
    )

    # Its asyncpg pools: the primary's, and the replica's when DATABASE_READ_URL is set.
    database_pools = providers.Resource(
        pools_resource,
        database,
        database_url,
        read_url=settings.provided.database_read_url,
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
    )

    # The worker's one LISTEN connection for committed changes (opened by a first subscriber).
    change_listener = providers.Resource(
        changes.listener_resource,
        providers.Callable(
            lambda listen_url, url: listen_url or url,
            settings.provided.database_listen_url,
            database_url,
        ),
    )

    # Read once: a `settings.provided...` argument would be resolved again for every unit.
    coalesce_lookups = providers.Singleton(
        lambda settings: bool(settings.coalesce_lookups), settings
    )

    unit_of_work = providers.Factory(UnitOfWork, database, coalesce=coalesce_lookups)

    # None when tracing is off (OTEL_TRACES_EXPORTER unset or none).
    tracer_provider = providers.Resource(
        tracer_provider_resource,
        settings.provided.otel_traces_exporter,
        disabled=settings.provided.otel_sdk_disabled,
    )

    # The worker's one outbound HTTP session: opened at startup, closed at shutdown.
    http_client = providers.Resource(
        inventory.client_session,
        timeout_s=settings.provided.upstream_timeout_s,
        max_connections=settings.provided.upstream_max_connections,
        tracer_provider=tracer_provider,
    )

    # Who a bearer token names; its JWKS keys, if any, come through the shared HTTP session.
    identifier = providers.Singleton(auth_setup.identifier, settings, http_client)

    # RATE_LIMIT per caller (None: no limit), kept in memory or in Redis.
    rate_limits = providers.Singleton(
        lambda settings: (
            RateLimits(
                settings.rate_limit,
                settings.rate_limit_storage_url,
                on_storage_error=settings.rate_limit_on_storage_error,
                storage_timeout_s=settings.rate_limit_storage_timeout_s,
            )
            if settings.rate_limit
            else None
        ),
        settings,
    )

    inventory = providers.Factory(
        inventory.InventoryClient,
        http_client,
        base_url=settings.provided.inventory_url,
        max_bytes=settings.provided.upstream_max_bytes,
        max_calls=settings.provided.upstream_max_calls,
    )
