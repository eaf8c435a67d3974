"""HTTP routes of the catalog: parse input, call reads or writes, shape the answer.

Each route declares itself (`@endpoint`): its scope, and its API description.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.catalog import examples, reads, writes
from carpool.catalog.queries import Row
from carpool.catalog.schemas import (
    Grommet,
    GrommetCreate,
    GrommetPage,
    GrommetPatch,
    IncludeQuery,
    Widget,
    WidgetCreate,
    WidgetPage,
    WidgetPageQuery,
    WidgetPatch,
)
from carpool.data.unit_of_work import Work
from carpool.errors import NotFound
from carpool.web import http_doc
from carpool.web.conditional import preconditions_of
from carpool.web.endpoints import Answer, Doc, endpoint
from carpool.web.inputs import (
    PageQuery,
    body_as,
    encode_cursor,
    existing_id,
    flag_list,
    next_link,
    page_params,
)
from carpool.web.responses import empty_response, json_response

blueprint = Blueprint("catalog")
READ = "catalog:read"
WRITE = "catalog:write"
_INCLUDES = frozenset({"grommets"})
_LOCATION = {"location": "The path of the new resource.", **http_doc.ETAG}
_DELETED = {204: Answer("Deleted.")}


def _work(request: Request) -> Work:
    work: Work = request.ctx.uow
    return work


def _page(request: Request, items: list[Row], more: bool) -> HTTPResponse:
    cursor = encode_cursor(items[-1]["id"]) if more and items else None
    headers = {"link": next_link(request, cursor)} if cursor is not None else None
    return json_response({"items": items, "next": cursor}, headers=headers)


def _grommet_missing(grommet_id: int) -> NotFound:
    return NotFound(f"grommet {grommet_id} does not exist")


def _widget_missing(widget_id: int) -> NotFound:
    return NotFound(f"widget {widget_id} does not exist")


# -- grommets ---------------------------------------------------------------------------------


@endpoint(
    blueprint,
    "/grommets",
    scope=READ,
    doc=Doc(
        "listGrommets",
        "A page of grommets by id (keyset pagination)",
        "grommets",
        answers={
            200: Answer("The page.", GrommetPage, examples.GROMMET_PAGE, http_doc.ETAG),
            **http_doc.READ_ANSWERS,
        },
        description=http_doc.PAGES,
        query=PageQuery,
        example={"limit": 1},
    ),
)
async def list_grommets(request: Request) -> HTTPResponse:
    after, limit = page_params(request)
    items, more = await reads.grommet_page(_work(request), after=after, limit=limit)
    return _page(request, items, more)


@endpoint(
    blueprint,
    "/grommets/<grommet_id:int>",
    scope=READ,
    doc=Doc(
        "getGrommet",
        "One grommet",
        "grommets",
        answers={
            200: Answer("The grommet.", Grommet, examples.GROMMET, http_doc.ETAG),
            **http_doc.READ_ANSWERS,
        },
        example={"grommet_id": 1},
        description=http_doc.REVALIDATE,
    ),
)
async def get_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    found = await reads.grommet(_work(request), existing_id(grommet_id, "grommet"))
    if found is None:
        raise _grommet_missing(grommet_id)
    return json_response(found)


@endpoint(
    blueprint,
    "/grommets",
    methods=("POST",),
    scope=WRITE,
    doc=Doc(
        "createGrommet",
        "Create a grommet",
        "grommets",
        answers={201: Answer("The new grommet.", Grommet, examples.GROMMET, _LOCATION)},
        errors=(409,),
        description=http_doc.IDEMPOTENT,
        body=GrommetCreate,
        body_example=examples.GROMMET_CREATE,
    ),
)
async def create_grommet(request: Request) -> HTTPResponse:
    data = body_as(request, GrommetCreate)
    row = await writes.create_grommet(_work(request), data.model_dump())
    return json_response(row, status=201, headers={"location": f"/grommets/{row['id']}"})


@endpoint(
    blueprint,
    "/grommets/<grommet_id:int>",
    methods=("PATCH",),
    scope=WRITE,
    doc=Doc(
        "patchGrommet",
        "Change some fields of a grommet",
        "grommets",
        answers={200: Answer("The grommet now.", Grommet, examples.GROMMET, http_doc.ETAG)},
        errors=(409, 412),
        description=http_doc.CONDITIONS,
        body=GrommetPatch,
        body_example=examples.GROMMET_PATCH,
        example={"grommet_id": 1},
    ),
)
async def patch_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    existing_id(grommet_id, "grommet")
    changes = body_as(request, GrommetPatch).model_dump(exclude_unset=True)
    row = await writes.update_grommet(
        _work(request), grommet_id, changes, preconditions=preconditions_of(request)
    )
    if row is None:
        raise _grommet_missing(grommet_id)
    return json_response(row)


@endpoint(
    blueprint,
    "/grommets/<grommet_id:int>",
    methods=("DELETE",),
    scope=WRITE,
    doc=Doc(
        "deleteGrommet",
        "Delete a grommet (409 while a widget uses it)",
        "grommets",
        answers=_DELETED,
        errors=http_doc.CONDITIONAL_WRITE_ERRORS,
        example={"grommet_id": 1},
        description=http_doc.CONDITIONS,
    ),
)
async def delete_grommet(request: Request, grommet_id: int) -> HTTPResponse:
    existing_id(grommet_id, "grommet")
    if not await writes.delete_grommet(
        _work(request), grommet_id, preconditions=preconditions_of(request)
    ):
        raise _grommet_missing(grommet_id)
    return empty_response()


# -- widgets ----------------------------------------------------------------------------------


@endpoint(
    blueprint,
    "/widgets",
    scope=READ,
    doc=Doc(
        "listWidgets",
        "A page of widgets by id (keyset pagination)",
        "widgets",
        answers={
            200: Answer("The page.", WidgetPage, examples.WIDGET_PAGE, http_doc.ETAG),
            **http_doc.READ_ANSWERS,
        },
        description=http_doc.PAGES,
        errors=(409,),
        query=WidgetPageQuery,
        example={"limit": 20, "include": "grommets"},
    ),
)
async def list_widgets(request: Request) -> HTTPResponse:
    after, limit = page_params(request)
    include = "grommets" in flag_list(request, "include", _INCLUDES)
    items, more = await reads.widget_page(
        _work(request), after=after, limit=limit, include_grommets=include
    )
    return _page(request, items, more)


@endpoint(
    blueprint,
    "/widgets/<widget_id:int>",
    scope=READ,
    doc=Doc(
        "getWidget",
        "One widget",
        "widgets",
        answers={
            200: Answer("The widget.", Widget, examples.WIDGET, http_doc.ETAG),
            **http_doc.READ_ANSWERS,
        },
        description=http_doc.REVALIDATE,
        errors=(409,),
        query=IncludeQuery,
        example={"widget_id": 3},
    ),
)
async def get_widget(request: Request, widget_id: int) -> HTTPResponse:
    include = "grommets" in flag_list(request, "include", _INCLUDES)
    found = await reads.widget(
        _work(request), existing_id(widget_id, "widget"), include_grommets=include
    )
    if found is None:
        raise _widget_missing(widget_id)
    return json_response(found)


@endpoint(
    blueprint,
    "/widgets",
    methods=("POST",),
    scope=WRITE,
    doc=Doc(
        "createWidget",
        "Create a widget (422 if a part names no grommet)",
        "widgets",
        answers={201: Answer("The new widget.", Widget, examples.WIDGET, _LOCATION)},
        description=http_doc.IDEMPOTENT,
        body=WidgetCreate,
        body_example=examples.WIDGET_CREATE,
    ),
)
async def create_widget(request: Request) -> HTTPResponse:
    data = body_as(request, WidgetCreate)
    parts = [part.model_dump() for part in data.parts]
    body = await writes.create_widget(_work(request), data.name, parts)
    return json_response(body, status=201, headers={"location": f"/widgets/{body['id']}"})


@endpoint(
    blueprint,
    "/widgets/<widget_id:int>",
    methods=("PATCH",),
    scope=WRITE,
    doc=Doc(
        "patchWidget",
        "Rename a widget and/or replace its parts",
        "widgets",
        answers={200: Answer("The widget now.", Widget, examples.WIDGET, http_doc.ETAG)},
        errors=(412,),
        description=http_doc.CONDITIONS,
        body=WidgetPatch,
        body_example=examples.WIDGET_PATCH,
        example={"widget_id": 3},
    ),
)
async def patch_widget(request: Request, widget_id: int) -> HTTPResponse:
    existing_id(widget_id, "widget")
    data = body_as(request, WidgetPatch)
    parts = [part.model_dump() for part in data.parts] if data.parts is not None else None
    found = await writes.update_widget(
        _work(request),
        widget_id,
        name=data.name,
        parts=parts,
        preconditions=preconditions_of(request),
    )
    if found is None:
        raise _widget_missing(widget_id)
    return json_response(found)


@endpoint(
    blueprint,
    "/widgets/<widget_id:int>",
    methods=("DELETE",),
    scope=WRITE,
    doc=Doc(
        "deleteWidget",
        "Delete a widget and its parts",
        "widgets",
        answers=_DELETED,
        errors=http_doc.CONDITIONAL_WRITE_ERRORS,
        description=http_doc.CONDITIONS,
        example={"widget_id": 3},
    ),
)
async def delete_widget(request: Request, widget_id: int) -> HTTPResponse:
    existing_id(widget_id, "widget")
    if not await writes.delete_widget(
        _work(request), widget_id, preconditions=preconditions_of(request)
    ):
        raise _widget_missing(widget_id)
    return empty_response()
