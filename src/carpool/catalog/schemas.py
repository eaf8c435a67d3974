"""What clients send and get: strict input models (unknown fields and wrong types refused),
and the output models the API description shows (answers are encoded from rows, not these)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from carpool.catalog.models import DIAMETER_MAX_MM, ID_MAX, MATERIAL_MAX, NAME_MAX, QUANTITY_MAX
from carpool.web.inputs import PageQuery, pattern_rule
from carpool.web.openapi.schemas import omit_null_defaults, require_some_property

# PostgreSQL text cannot hold NUL; refusing it here keeps it a 422 instead of a 500.
_NO_NUL = pattern_rule(r"^[^\x00]*$", "String must not contain NUL characters")
# Exactly what str.isspace() calls whitespace, spelt so that JSON Schema can say it too.
_BLANK = "^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
_BLANK_RE = re.compile(_BLANK)


def _not_blank(value: str) -> str:
    # A name of spaces alone would show as nothing, and differ from another only in width.
    if value and _BLANK_RE.fullmatch(value):
        raise ValueError("must not be blank (only whitespace)")
    return value


_NOT_BLANK_SCHEMA = Field(json_schema_extra={"not": {"pattern": _BLANK}})
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_MAX, pattern=_NO_NUL),
    AfterValidator(_not_blank),
    _NOT_BLANK_SCHEMA,
]
Material = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MATERIAL_MAX, pattern=_NO_NUL),
    AfterValidator(_not_blank),
    _NOT_BLANK_SCHEMA,
]
Diameter = Annotated[float, Field(gt=0, le=DIAMETER_MAX_MM, allow_inf_nan=False)]
Quantity = Annotated[int, Field(ge=1, le=QUANTITY_MAX)]
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
MAX_PARTS = 1000
T = TypeVar("T")


def _refuse_null(value: T) -> T:
    # A field validator, not the model's, so that the error points at the field.
    if value is None:
        raise ValueError("cannot be null")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Patch(_Input):
    # Fields may be left out but never null, and at least one is given: the schema says so.
    model_config = ConfigDict(json_schema_extra=require_some_property)


class GrommetCreate(_Input):
    """Body of `POST /grommets`."""

    name: Name
    material: Material
    diameter_mm: Diameter


class GrommetPatch(_Patch):
    """Body of `PATCH /grommets/{id}`: any non-empty subset of the fields."""

    name: Name | None = None
    material: Material | None = None
    diameter_mm: Diameter | None = None

    _not_null = field_validator("name", "material", "diameter_mm")(_refuse_null)

    @model_validator(mode="after")
    def _not_empty(self) -> GrommetPatch:
        _require_some_field(self)
        return self


class Part(_Input):
    """One line of a widget's bill of materials."""

    grommet_id: Id
    quantity: Quantity


def _distinct_grommets(parts: list[Part]) -> list[Part]:
    seen: set[int] = set()
    for part in parts:
        if part.grommet_id in seen:
            raise ValueError(f"grommet {part.grommet_id} is listed more than once")
        seen.add(part.grommet_id)
    return parts


# Checked on the list itself (not the model) so that the error points at /parts.
Parts = Annotated[list[Part], Field(max_length=MAX_PARTS), AfterValidator(_distinct_grommets)]


class WidgetCreate(_Input):
    """Body of `POST /widgets`."""

    name: Name
    parts: Parts = []


class WidgetPatch(_Patch):
    """Body of `PATCH /widgets/{id}`: a new name, a new parts list (replacing the old), or both."""

    name: Name | None = None
    parts: Parts | None = None

    _not_null = field_validator("name", "parts")(_refuse_null)

    @model_validator(mode="after")
    def _not_empty(self) -> WidgetPatch:
        _require_some_field(self)
        return self


def _require_some_field(model: BaseModel) -> None:
    if not model.model_fields_set:
        raise ValueError("give at least one field to change")


# -- what the routes answer (schema only) ----------------------------------------------------


class _Output(BaseModel):
    model_config = ConfigDict(json_schema_extra=omit_null_defaults)


class Grommet(_Output):
    """A grommet."""

    id: Id
    name: str
    material: str
    diameter_mm: float = Field(gt=0)
    created_at: datetime
    updated_at: datetime


class WidgetPart(_Output):
    """One line of a widget's bill of materials, by grommet id."""

    grommet_id: Id
    quantity: Quantity


class WidgetPartWithGrommet(_Output):
    """One line of a widget's bill of materials, its grommet embedded (`?include=grommets`)."""

    grommet: Grommet
    quantity: Quantity


class Widget(_Output):
    """A widget, its parts in grommet-id order."""

    id: Id
    name: str
    parts: list[WidgetPart] | list[WidgetPartWithGrommet] = Field(
        description="With ?include=grommets each part embeds its grommet."
    )
    created_at: datetime
    updated_at: datetime


_NEXT = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class GrommetPage(_Output):
    """A page of grommets by id."""

    items: list[Grommet]
    next: str | None = _NEXT


class WidgetPage(_Output):
    """A page of widgets by id."""

    items: list[Widget]
    next: str | None = _NEXT


class AvailabilityPart(_Output):
    """What the stock allows of one part."""

    grommet_id: Id
    quantity: Quantity
    available: int = Field(ge=0, description="Units of the grommet in stock.")
    enough_for: int = Field(ge=0, description="Widgets this part's stock allows.")


class Availability(_Output):
    """How many of a widget the inventory's stock allows, and which grommet limits it."""

    widget_id: Id
    buildable: int | None = Field(
        ge=0, description="Whole widgets the stock allows; null for a widget with no parts."
    )
    limited_by: Id | None = Field(
        description="The grommet that allows the fewest (lowest id among equals)."
    )
    parts: list[AvailabilityPart]


# -- what the routes read from the query ------------------------------------------------------

# The comma-separated values `flag_list` reads: any mix of "grommets" and empty values.
_INCLUDE = r"^,*(grommets(,+grommets)*,*)?$"


class IncludeQuery(BaseModel):
    """`?include=grommets` embeds each part's grommet."""

    include: str | None = Field(
        None,
        pattern=_INCLUDE,
        description="`grommets` embeds each part's grommet.",
        examples=["grommets"],
    )

    model_config = ConfigDict(json_schema_extra=omit_null_defaults)


class WidgetPageQuery(PageQuery, IncludeQuery):
    """A page of widgets, with `?include=`."""
