"""The widgets' tables: the widgets, and their parts (the grommets each is made of)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
)

from carpool.catalog.tables import NAME_MAX, metadata, timestamps

QUANTITY_MAX = 2**31 - 1

widgets = Table(
    "widgets",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    *timestamps(),
)

widget_parts = Table(
    "widget_parts",
    metadata,
    Column("widget_id", BigInteger, ForeignKey("widgets.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "grommet_id", BigInteger, ForeignKey("grommets.id", ondelete="RESTRICT"), primary_key=True
    ),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index(None, "grommet_id"),
)
