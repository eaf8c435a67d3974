"""HTTP routes of the catalog: parse input, call reads or queries, shape the answer."""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.catalog import loaders, queries, reads
from carpool.catalog.schemas import GrommetCreate, GrommetPatch, WidgetCreate, WidgetPatch
from carpool.data.unit_of_work import UnitOfWork
from carpool.errors import NotFound
from carpool.web.inputs import body_as, encode_cursor, existing_id, flag_list, page_params
from carpool.web.responses import empty_response, json_response
from carpool.web.routing import readable

blueprint = Blueprint("catalog")
_INCLUDES = frozenset({"grommets"})


def _uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.ctx.uow
    return uow


def _page(items: list[queries.Row], more: bool) -> HTTPResponse:
    cursor = encode_cursor(items[-1]["id"]) if more and items else None
    return json_response({"items": items, "next": cursor})


def _grommet_missing(grommet_id: int) -> NotFound:
    return NotFound(f"grommet {grommet_id} does not exist")


def _widget_missing(widget_id: int) -> NotFound:
    return NotFound(f"widget {widget_id} does not exist")


# -- grommets ---------------------------------------------------------------------------------


@readable(blueprint, "/grommets")
async def list_grommets(request: Request) -> HTTPResponse:
    after, limit = page_params(request)
    items, more = await reads.grommet_page(_uow(request), after=after, limit=limit)
    return _page(items, more)


@readable(blueprint, "/grommets/<grommet_id:int>")
async def get_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    found = await reads.grommet(_uow(request), existing_id(grommet_id, "grommet"))
    if found is None:
        raise _grommet_missing(grommet_id)
    return json_response(found)


@blueprint.post("/grommets")
async def create_grommet(request: Request) -> HTTPResponse:
    data = body_as(request, GrommetCreate)
    uow = _uow(request)
    row = await uow.run(queries.create_grommet, data.model_dump())
    loaders.grommet_written(uow, row["id"], row)
    return json_response(row, status=201, headers={"location": f"/grommets/{row['id']}"})


@blueprint.patch("/grommets/<grommet_id:int>")
async def patch_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    existing_id(grommet_id, "grommet")
    changes = body_as(request, GrommetPatch).model_dump(exclude_unset=True)
    uow = _uow(request)
    row = await uow.run(queries.update_grommet, grommet_id, changes)
    if row is None:
        raise _grommet_missing(grommet_id)
    loaders.grommet_written(uow, grommet_id, row)
    return json_response(row)


@blueprint.delete("/grommets/<grommet_id:int>")
async def delete_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    existing_id(grommet_id, "grommet")
    uow = _uow(request)
    if not await uow.run(queries.delete_grommet, grommet_id):
        raise _grommet_missing(grommet_id)
    loaders.grommet_written(uow, grommet_id, None)
    return empty_response()


# -- widgets ----------------------------------------------------------------------------------


@readable(blueprint, "/widgets")
async def list_widgets(request: Request) -> HTTPResponse:
    after, limit = page_params(request)
    include = "grommets" in flag_list(request, "include", _INCLUDES)
    items, more = await reads.widget_page(
        _uow(request), after=after, limit=limit, include_grommets=include
    )
    return _page(items, more)


@readable(blueprint, "/widgets/<widget_id:int>")
async def get_widget(request: Request, widget_id: int) -> HTTPResponse:
    include = "grommets" in flag_list(request, "include", _INCLUDES)
    found = await reads.widget(
        _uow(request), existing_id(widget_id, "widget"), include_grommets=include
    )
    if found is None:
        raise _widget_missing(widget_id)
    return json_response(found)


@blueprint.post("/widgets")
async def create_widget(request: Request) -> HTTPResponse:
    data = body_as(request, WidgetCreate)
    # Parts are answered in grommet-id order, as every read of the widget answers them.
    parts = sorted((part.model_dump() for part in data.parts), key=lambda p: p["grommet_id"])
    uow = _uow(request)
    row = await uow.run(queries.create_widget, data.name, parts)
    loaders.widget_written(uow, row["id"], row, parts)
    body = reads.widget_body(row, parts, None)
    return json_response(body, status=201, headers={"location": f"/widgets/{row['id']}"})


@blueprint.patch("/widgets/<widget_id:int>")
async def patch_widget(request: Request, widget_id: int) -> HTTPResponse:
    existing_id(widget_id, "widget")
    data = body_as(request, WidgetPatch)
    parts = [part.model_dump() for part in data.parts] if data.parts is not None else None
    uow = _uow(request)
    row = await uow.run(queries.update_widget, widget_id, name=data.name, parts=parts)
    if row is None:
        raise _widget_missing(widget_id)
    loaders.widget_written(uow, widget_id, row, parts)
    found = await reads.widget(uow, widget_id, include_grommets=False)
    assert found is not None
    return json_response(found)


@blueprint.delete("/widgets/<widget_id:int>")
async def delete_widget(request: Request, widget_id: int) -> HTTPResponse:
    existing_id(widget_id, "widget")
    uow = _uow(request)
    if not await uow.run(queries.delete_widget, widget_id):
        raise _widget_missing(widget_id)
    loaders.widget_written(uow, widget_id, None, None)
    return empty_response()
