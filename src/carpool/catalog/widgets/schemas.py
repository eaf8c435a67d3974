"""What clients send and get of widgets (and of their availability)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from carpool.catalog.grommets import Grommet
from carpool.catalog.widgets.tables import QUANTITY_MAX
from carpool.resources.fields import Id, Input, Name, Output, patch_of

MAX_PARTS = 1000
Quantity = Annotated[int, Field(ge=1, le=QUANTITY_MAX)]


class Part(Input):
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


class WidgetCreate(Input):
    """Body of `POST /widgets`."""

    name: Name
    parts: Parts = []


WidgetPatch = patch_of(
    WidgetCreate,
    name="WidgetPatch",
    doc="Body of `PATCH /widgets/{id}`: a new name, a new parts list (replacing the old), or both.",
)


class WidgetPart(Output):
    """One line of a widget's bill of materials, by grommet id."""

    grommet_id: Id
    quantity: Quantity


class WidgetPartWithGrommet(Output):
    """One line of a widget's bill of materials, its grommet embedded (`?include=grommets`)."""

    grommet: Grommet  # type: ignore[valid-type]
    quantity: Quantity


class Widget(Output):
    """A widget, its parts in grommet-id order."""

    id: Id
    name: str
    parts: list[WidgetPart] | list[WidgetPartWithGrommet] = Field(
        description="With ?include=grommets each part embeds its grommet."
    )
    created_at: datetime
    updated_at: datetime


class AvailabilityPart(Output):
    """What the stock allows of one part."""

    grommet_id: Id
    quantity: Quantity
    available: int = Field(ge=0, description="Units of the grommet in stock.")
    enough_for: int = Field(ge=0, description="Widgets this part's stock allows.")


class Availability(Output):
    """How many of a widget the inventory's stock allows, and which grommet limits it."""

    widget_id: Id
    buildable: int | None = Field(
        ge=0, description="Whole widgets the stock allows; null for a widget with no parts."
    )
    limited_by: Id | None = Field(
        description="The grommet that allows the fewest (lowest id among equals)."
    )
    parts: list[AvailabilityPart]
