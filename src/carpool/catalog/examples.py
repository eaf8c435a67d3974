"""Examples that span the catalog's resources: a batch and a frame, shown in the API
descriptions of `POST /batch` and `/ws` (handed to the compose routes by `create_app`)."""

from __future__ import annotations

from typing import Final

from carpool.catalog import grommets
from carpool.catalog.widgets import routes as widget_routes

GROMMET: Final = grommets.EXAMPLE
WIDGET: Final = widget_routes.EXAMPLE

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
