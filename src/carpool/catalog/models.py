"""Tables of the catalog (SQLAlchemy Core), the source the migrations are checked against."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
)

NAME_MAX = 200
MATERIAL_MAX = 100
ID_MAX = 2**63 - 1
QUANTITY_MAX = 2**31 - 1
DIAMETER_MAX_MM = 100_000.0

metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_name)s_key",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ix": "%(table_name)s_%(column_0_name)s_idx",
    }
)


def _timestamps() -> tuple[Column[object], Column[object]]:
    return (
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


grommets = Table(
    "grommets",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("material", String(MATERIAL_MAX), nullable=False),
    Column("diameter_mm", Double, nullable=False),
    *_timestamps(),
    CheckConstraint("diameter_mm > 0", name="diameter_positive"),
)

widgets = Table(
    "widgets",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    *_timestamps(),
)

widget_parts = Table(
    "widget_parts",
    metadata,
    Column(
        "widget_id",
        BigInteger,
        ForeignKey("widgets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "grommet_id",
        BigInteger,
        ForeignKey("grommets.id", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index(None, "grommet_id"),
)
