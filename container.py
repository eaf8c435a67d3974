"""The composition root: every long-lived object of carpool and how it is made."""

from __future__ import annotations

from dependency_injector import containers, providers

from carpool.catalog.seed import seed_demo_rows
from carpool.data import embedded
from carpool.data.engine import engine_resource
from carpool.data.unit_of_work import UnitOfWork
from carpool.settings import load_settings


class Container(containers.DeclarativeContainer):
    """Settings, the database and a UnitOfWork factory (one per request)."""

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

    engine = providers.Resource(
        engine_resource,
        database_url,
        pool_size=settings.provided.db_pool_size,
        max_overflow=settings.provided.db_max_overflow,
        pool_timeout_s=settings.provided.db_pool_timeout_s,
    )

    unit_of_work = providers.Factory(UnitOfWork, engine)
