"""How many of a widget can be built from the grommets in stock, and which grommet limits it:
the catalog's parts, the inventory service's stock (`GET /widgets/{id}/availability`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.auth.identity import CATALOG_READ
from carpool.catalog.widgets.resource import widgets
from carpool.catalog.widgets.routes import blueprint
from carpool.catalog.widgets.schemas import Availability
from carpool.data.sql import Row
from carpool.data.unit_of_work import Work
from carpool.errors import Unavailable
from carpool.upstream.inventory import NOT_CONFIGURED, InventoryClient
from carpool.web.endpoints import Answer, Doc, endpoint
from carpool.web.inputs import existing_id
from carpool.web.responses import json_response

# Units of one grommet in stock, by grommet id; raises an AppError when it cannot tell.
StockLevel = Callable[[int], Awaitable[int]]
AVAILABILITY = {
    "widget_id": 3,
    "buildable": 10,
    "limited_by": 1,
    "parts": [{"grommet_id": 1, "quantity": 4, "available": 42, "enough_for": 10}],
}


async def widget_availability(uow: Work, widget_id: int, stock: StockLevel) -> Row | None:
    """The widget's availability (see `summarise`), or None if there is no such widget.

    The stock of every part is asked for at once; the first failure is the answer, and
    the other questions still in flight are abandoned.
    """
    widget = await widgets.one(uow, widget_id)
    if widget is None:
        return None
    parts: list[Row] = widget["parts"]
    levels = await _stock_levels(stock, [part["grommet_id"] for part in parts])
    return summarise(widget_id, parts, levels)


async def _stock_levels(stock: StockLevel, grommet_ids: Sequence[int]) -> dict[int, int]:
    tasks = [asyncio.ensure_future(stock(grommet_id)) for grommet_id in grommet_ids]
    try:
        levels = await asyncio.gather(*tasks)
    except BaseException:
        # gather leaves the others running; their answers no longer matter.
        for task in tasks:
            task.cancel()
        raise
    return dict(zip(grommet_ids, levels, strict=True))


def summarise(widget_id: int, parts: Sequence[Row], levels: dict[int, int]) -> Row:
    """`{"widget_id", "buildable", "limited_by", "parts": [...]}` from the stock `levels`.

    `buildable` is how many whole widgets the stock allows; `limited_by` the grommet that
    allows the fewest (the lowest id among equals). A widget with no parts needs nothing:
    both are null.
    """
    lines = [
        {
            "grommet_id": part["grommet_id"],
            "quantity": part["quantity"],
            "available": levels[part["grommet_id"]],
            "enough_for": levels[part["grommet_id"]] // part["quantity"],
        }
        for part in sorted(parts, key=lambda p: p["grommet_id"])
    ]
    limiting = min(lines, key=lambda line: line["enough_for"], default=None)
    return {
        "widget_id": widget_id,
        "buildable": limiting["enough_for"] if limiting else None,
        "limited_by": limiting["grommet_id"] if limiting else None,
        "parts": lines,
    }


@endpoint(
    blueprint,
    "/widgets/<widget_id:int>/availability",
    scope=CATALOG_READ,
    doc=Doc(
        "getWidgetAvailability",
        "How many of a widget the inventory's stock allows, and which grommet limits it",
        "widgets",
        answers={200: Answer("The availability.", Availability, AVAILABILITY)},
        errors=(409, 502, 503, 504),
        example={"widget_id": 3},
    ),
)
async def get_availability(request: Request, widget_id: int) -> HTTPResponse:
    """How many of the widget the inventory's stock allows: 404, or 502/503/504 upstream."""
    inventory: InventoryClient = request.app.ctx.inventory
    if not inventory.configured:
        raise Unavailable(NOT_CONFIGURED)
    outer = request.ctx.parent_request or request  # a batch is one call
    stock = inventory.stock_for(request.ctx.uow, outer, request_id=request.ctx.request_id)
    found = await widget_availability(request.ctx.uow, existing_id(widget_id, "widget"), stock)
    if found is None:
        raise widgets.missing(widget_id)
    return json_response(found)
