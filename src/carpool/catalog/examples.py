"""Example requests and answers of the catalog's routes, shown in the API descriptions (also
as a batch and as frames, handed to the compose routes by `create_app`)."""

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

# What Swagger UI's "Try it out" sends to POST /batch: a grommet, a widget made of it (the
# new id passed by a reference), and the widget read back with its grommet embedded.
BATCH: Final = {
    "atomic": True,
    "requests": [
        {
            "id": "g",
            "method": "POST",
            "path": "/grommets",
            "body": {"name": "M6 from a batch", "material": "brass", "diameter_mm": 6},
        },
        {
            "id": "w",
            "method": "POST",
            "path": "/widgets",
            "body": {
                "name": "hinge from a batch",
                "parts": [{"grommet_id": "{{g/body/id}}", "quantity": 4}],
            },
        },
        {"id": "r", "path": "/widgets/{{w/body/id}}?include=grommets"},
    ],
}
_MADE_GROMMET = {**GROMMET, "id": 7, "name": "M6 from a batch"}
_MADE_WIDGET = {
    **WIDGET,
    "id": 4,
    "name": "hinge from a batch",
    "parts": [{"grommet_id": 7, "quantity": 4}],
}
BATCH_ANSWER: Final = {
    "committed": True,
    "responses": [
        {
            "id": "g",
            "status": 201,
            "headers": {"location": "/grommets/7"},
            "body": _MADE_GROMMET,
        },
        {"id": "w", "status": 201, "headers": {"location": "/widgets/4"}, "body": _MADE_WIDGET},
        {
            "id": "r",
            "status": 200,
            "headers": {},
            "body": {**_MADE_WIDGET, "parts": [{"grommet": _MADE_GROMMET, "quantity": 4}]},
        },
    ],
}
# One sub-request (a frame's), answered with GROMMET.
GET_GROMMET: Final = {"method": "GET", "path": "/grommets/1"}
