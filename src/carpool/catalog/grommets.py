"""Grommets: the table, the models, the resource and its routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Identity,
    String,
    Table,
)

from carpool.auth.identity import CATALOG_READ, CATALOG_WRITE
from carpool.catalog.suppliers import Supplier, suppliers
from carpool.catalog.tables import NAME_MAX, metadata, timestamps
from carpool.resources.fields import NO_NUL, NOT_BLANK, NOT_BLANK_SCHEMA, Id, Input, Name, answer_of
from carpool.resources.resource import Embed, Resource
from carpool.resources.routes import Examples, standard_routes

MATERIAL_MAX = 100
DIAMETER_MAX_MM = 100_000.0

table = Table(
    "grommets",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("material", String(MATERIAL_MAX), nullable=False),
    Column("diameter_mm", Double, nullable=False),
    Column("supplier_id", BigInteger, ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True),
    *timestamps(),
    CheckConstraint("diameter_mm > 0", name="diameter_positive"),
)

Material = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MATERIAL_MAX, pattern=NO_NUL),
    NOT_BLANK,
    NOT_BLANK_SCHEMA,
]
Diameter = Annotated[float, Field(gt=0, le=DIAMETER_MAX_MM, allow_inf_nan=False)]


class GrommetCreate(Input):
    """Body of `POST /grommets`."""

    name: Name
    material: Material
    diameter_mm: Diameter
    supplier_id: Id | None = Field(None, description="The supplier's id, or null for none.")


Grommet = answer_of(
    GrommetCreate,
    name="Grommet",
    doc="A grommet (with ?include=supplier, `supplier` in place of `supplier_id`).",
    embeds={"supplier_id": Supplier},
)

_AT = "2026-01-05T09:30:00.000000Z"
EXAMPLE = {
    "id": 1,
    "name": "M6",
    "material": "brass",
    "diameter_mm": 6.0,
    "supplier_id": None,
    "created_at": _AT,
    "updated_at": _AT,
}

grommets = Resource(
    table,
    singular="grommet",
    in_use="grommet {id} is used by a widget; remove it from every widget first",
    embeds={"supplier": Embed("supplier_id", suppliers)},
)
blueprint = standard_routes(
    grommets,
    answer=Grommet,
    create=GrommetCreate,
    read=CATALOG_READ,
    write=CATALOG_WRITE,
    examples=Examples(
        EXAMPLE,
        create={"name": "M6", "material": "brass", "diameter_mm": 6},
        patch={"diameter_mm": 6.5},
    ),
    summaries={"delete": "Delete a grommet (409 while a widget uses it)"},
)
