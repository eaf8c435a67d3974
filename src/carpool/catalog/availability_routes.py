"""HTTP route of widget availability: the catalog's parts, the inventory service's stock."""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.catalog import examples
from carpool.catalog.availability import widget_availability
from carpool.catalog.routes import READ
from carpool.catalog.schemas import Availability
from carpool.errors import NotFound, Unavailable
from carpool.upstream.inventory import NOT_CONFIGURED, InventoryClient
from carpool.web.endpoints import Answer, Doc, endpoint
from carpool.web.inputs import existing_id
from carpool.web.responses import json_response

blueprint = Blueprint("availability")


@endpoint(
    blueprint,
    "/widgets/<widget_id:int>/availability",
    scope=READ,
    doc=Doc(
        "getWidgetAvailability",
        "How many of a widget the inventory's stock allows, and which grommet limits it",
        "widgets",
        answers={200: Answer("The availability.", Availability, examples.AVAILABILITY)},
        errors=(409, 502, 503, 504),
        example={"widget_id": 3},
    ),
)
async def get_availability(request: Request, widget_id: int) -> HTTPResponse:
    """How many of the widget the inventory's stock allows: 404, or 502/503/504 upstream."""
    inventory: InventoryClient = request.app.ctx.inventory
    if not inventory.configured:
        raise Unavailable(NOT_CONFIGURED)
    outer = getattr(request.ctx, "parent_request", None) or request  # a batch is one call
    stock = inventory.stock_for(
        request.ctx.uow, outer, request_id=getattr(request.ctx, "request_id", None)
    )
    found = await widget_availability(request.ctx.uow, existing_id(widget_id, "widget"), stock)
    if found is None:
        raise NotFound(f"widget {widget_id} does not exist")
    return json_response(found)
