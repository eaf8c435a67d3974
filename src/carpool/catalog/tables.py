"""What the catalog's tables share: one MetaData (its naming convention is the one the
migrations and the constraint messages rely on), the limits, the timestamp columns."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, func

from carpool.resources.fields import NAME_MAX

__all__ = ["NAME_MAX", "metadata", "timestamps"]

metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_name)s_key",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ix": "%(table_name)s_%(column_0_name)s_idx",
    }
)


def timestamps() -> tuple[Column[object], Column[object]]:
    """`created_at` and `updated_at`, set by the database (an update sets `updated_at`)."""
    return (
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
