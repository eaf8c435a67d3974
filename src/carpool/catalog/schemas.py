"""What clients may send: strict input models (unknown fields and wrong types refused)."""

from __future__ import annotations

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
from carpool.web.inputs import pattern_rule

# PostgreSQL text cannot hold NUL; refusing it here keeps it a 422 instead of a 500.
_NO_NUL = pattern_rule(r"^[^\x00]*$", "String must not contain NUL characters")


def _not_blank(value: str) -> str:
    # A name of spaces alone would show as nothing, and differ from another only in width.
    if value and value.isspace():
        raise ValueError("must not be blank (only whitespace)")
    return value


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_MAX, pattern=_NO_NUL),
    AfterValidator(_not_blank),
]
Material = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MATERIAL_MAX, pattern=_NO_NUL),
    AfterValidator(_not_blank),
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


class GrommetCreate(_Input):
    """Body of `POST /grommets`."""

    name: Name
    material: Material
    diameter_mm: Diameter


class GrommetPatch(_Input):
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


class WidgetPatch(_Input):
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
