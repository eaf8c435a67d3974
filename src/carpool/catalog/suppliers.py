"""Suppliers: who makes a grommet (a grommet may name one: `supplier_id`)."""

from __future__ import annotations

from typing import Annotated

import iso3166
from pydantic import AfterValidator, Field
from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, String, Table

from carpool.auth.identity import CATALOG_READ, CATALOG_WRITE
from carpool.catalog.tables import NAME_MAX, metadata, timestamps
from carpool.resources.fields import Input, Name, answer_of
from carpool.resources.resource import Resource
from carpool.resources.routes import Examples, standard_routes

table = Table(
    "suppliers",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("country", String(2), nullable=False),
    *timestamps(),
    CheckConstraint("country ~ '^[A-Z]{2}$'", name="country_code"),
)

# ISO 3166-1 alpha-2, officially assigned codes only (the `iso3166` package's list).
COUNTRIES = sorted(iso3166.countries_by_alpha2)


def _assigned(code: str) -> str:
    if code not in iso3166.countries_by_alpha2:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (upper case)")
    return code


Country = Annotated[
    str,
    Field(
        json_schema_extra={"enum": COUNTRIES},
        description="ISO 3166-1 alpha-2, upper case.",
        examples=["DE"],
    ),
    AfterValidator(_assigned),
]


class SupplierCreate(Input):
    """Body of `POST /suppliers`."""

    name: Name
    country: Country


Supplier = answer_of(SupplierCreate, name="Supplier", doc="A supplier of grommets.")

_AT = "2026-01-05T09:30:00.000000Z"
EXAMPLE = {"id": 1, "name": "Acme", "country": "DE", "created_at": _AT, "updated_at": _AT}

suppliers = Resource(
    table,
    singular="supplier",
    in_use="supplier {id} is named by a grommet; clear the grommet's supplier_id first",
)
blueprint = standard_routes(
    suppliers,
    answer=Supplier,
    create=SupplierCreate,
    read=CATALOG_READ,
    write=CATALOG_WRITE,
    examples=Examples(EXAMPLE, create={"name": "Acme", "country": "DE"}, patch={"country": "FR"}),
    summaries={"delete": "Delete a supplier (409 while a grommet names it)"},
)
