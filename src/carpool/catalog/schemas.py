"""What clients may send: strict input models (unknown fields and wrong types refused)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from carpool.catalog.models import DIAMETER_MAX_MM, ID_MAX, MATERIAL_MAX, NAME_MAX, QUANTITY_MAX

# PostgreSQL text cannot hold NUL; refusing it here keeps it a 422 instead of a 500.
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=_NO_NUL)]
Material = Annotated[str, StringConstraints(min_length=1, max_length=MATERIAL_MAX, pattern=_NO_NUL)]
Diameter = Annotated[float, Field(gt=0, le=DIAMETER_MAX_MM, allow_inf_nan=False)]
Quantity = Annotated[int, Field(ge=1, le=QUANTITY_MAX)]
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
MAX_PARTS = 1000


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

    @model_validator(mode="after")
    def _not_empty(self) -> GrommetPatch:
        _require_some_field(self)
        return self


class Part(_Input):
    """One line of a widget's bill of materials."""

    grommet_id: Id
    quantity: Quantity


Parts = Annotated[list[Part], Field(max_length=MAX_PARTS)]


class WidgetCreate(_Input):
    """Body of `POST /widgets`."""

    name: Name
    parts: Parts = []

    @model_validator(mode="after")
    def _distinct(self) -> WidgetCreate:
        _require_distinct_grommets(self.parts)
        return self


class WidgetPatch(_Input):
    """Body of `PATCH /widgets/{id}`: a new name, a new parts list (replacing the old), or both."""

    name: Name | None = None
    parts: Parts | None = None

    @model_validator(mode="after")
    def _valid(self) -> WidgetPatch:
        _require_some_field(self)
        _require_distinct_grommets(self.parts or [])
        return self


def _require_some_field(model: BaseModel) -> None:
    if not model.model_fields_set:
        raise ValueError("give at least one field to change")
    for field in model.model_fields_set:
        if getattr(model, field) is None:
            raise ValueError(f"{field} cannot be null")


def _require_distinct_grommets(parts: list[Part]) -> None:
    seen: set[int] = set()
    for part in parts:
        if part.grommet_id in seen:
            raise ValueError(f"grommet {part.grommet_id} is listed more than once")
        seen.add(part.grommet_id)
