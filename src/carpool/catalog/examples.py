"""Example requests and answers of the catalog's routes, shown in the API description."""

from __future__ import annotations

from typing import Any, Final

_AT = "2026-01-05T09:30:00.000000Z"
GROMMET: Final[dict[str, Any]] = {
    "id": 1,
    "name": "M6",
    "material": "brass",
    "diameter_mm": 6.0,
    "created_at": _AT,
    "updated_at": _AT,
}
GROMMET_CREATE: Final = {"name": "M6", "material": "brass", "diameter_mm": 6}
GROMMET_PATCH: Final = {"diameter_mm": 6.5}
GROMMET_PAGE: Final = {"items": [GROMMET], "next": "YWZ0ZXI6MQ"}
WIDGET: Final[dict[str, Any]] = {
    "id": 3,
    "name": "hinge",
    "parts": [{"grommet_id": 1, "quantity": 4}],
    "created_at": _AT,
    "updated_at": _AT,
}
WIDGET_CREATE: Final = {"name": "hinge", "parts": [{"grommet_id": 1, "quantity": 4}]}
WIDGET_PATCH: Final = {"name": "hinge-2"}
WIDGET_PAGE: Final = {"items": [WIDGET], "next": None}
AVAILABILITY: Final = {
    "widget_id": 3,
    "buildable": 10,
    "limited_by": 1,
    "parts": [{"grommet_id": 1, "quantity": 4, "available": 42, "enough_for": 10}],
}
