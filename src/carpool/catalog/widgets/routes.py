"""The widgets' standard routes (`/widgets`, `/widgets/{widget_id}`), on their blueprint."""

from __future__ import annotations

from carpool.auth.identity import CATALOG_READ, CATALOG_WRITE
from carpool.catalog.widgets.resource import widgets
from carpool.catalog.widgets.schemas import Widget, WidgetCreate, WidgetPatch
from carpool.resources.routes import Examples, standard_routes

_AT = "2026-01-05T09:30:00.000000Z"
EXAMPLE = {
    "id": 3,
    "name": "hinge",
    "parts": [{"grommet_id": 1, "quantity": 4}],
    "created_at": _AT,
    "updated_at": _AT,
}

blueprint = standard_routes(
    widgets,
    answer=Widget,
    create=WidgetCreate,
    patch=WidgetPatch,
    read=CATALOG_READ,
    write=CATALOG_WRITE,
    examples=Examples(
        EXAMPLE,
        create={"name": "hinge", "parts": [{"grommet_id": 1, "quantity": 4}]},
        patch={"name": "hinge-2"},
    ),
    summaries={
        "create": "Create a widget (422 if a part names no grommet)",
        "patch": "Rename a widget and/or replace its parts",
        "delete": "Delete a widget and its parts",
    },
)
