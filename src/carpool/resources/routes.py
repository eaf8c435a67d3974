"""The standard routes of a resource, each an ordinary `@endpoint` on the one call pipeline.

`standard_routes(resource, ...)` registers, on the resource's own blueprint, `GET /<name>`
(a keyset page), `GET /<name>/{<singular>_id}`, `POST /<name>` (201 + `Location`),
`PATCH /<name>/{<singular>_id}` and `DELETE /<name>/{<singular>_id}` (204), with their
declarations: operationIds (`listParts`, `getPart`, ...), the tag (the resource's
name) and the scopes stated once. What the pipeline adds to every call (ETags, 304, 412,
Idempotency-Key, 401/403/429/503) the API description derives by itself. A resource may
`omit` any of them and declare its own handler in their place, or add custom routes to
the same blueprint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.data.sql import Row
from carpool.data.unit_of_work import Work
from carpool.resources.fields import include_query, page_of, patch_of
from carpool.resources.resource import NOTHING, Resource
from carpool.web.conditional import preconditions_of
from carpool.web.endpoints import Answer, Doc, endpoint
from carpool.web.inputs import (
    body_as,
    encode_cursor,
    existing_id,
    flag_list,
    next_link,
    page_params,
)
from carpool.web.responses import empty_response, json_response

STANDARD = ("list", "get", "create", "patch", "delete")
_PAGES = 'A page with a next one also says so in `Link: <...?cursor=...>; rel="next"`.'
Handler = Callable[..., Awaitable[HTTPResponse]]


@dataclass(frozen=True, slots=True)
class Examples:
    """Example bodies for the API description: one answer, and the create and patch bodies."""

    one: Row
    create: Row | None = None
    patch: Row | None = None


def work_of(request: Request) -> Work:
    """The call's unit of work (a borrower's view), set by the pipeline."""
    work: Work = request.ctx.uow
    return work


def page_response(request: Request, items: list[Row], more: bool) -> HTTPResponse:
    """`{"items": [...], "next": <cursor or null>}`, with `Link` to the next page if any."""
    cursor = encode_cursor(items[-1]["id"]) if more and items else None
    headers = {"link": next_link(request, cursor)} if cursor is not None else None
    return json_response({"items": items, "next": cursor}, headers=headers)


def standard_routes(
    resource: Resource,
    *,
    answer: type[BaseModel],
    create: type[BaseModel] | None,
    read: str,
    write: str,
    examples: Examples,
    patch: type[BaseModel] | None = None,
    summaries: Mapping[str, str] | None = None,
    omit: Collection[str] = (),
    blueprint: Blueprint | None = None,
) -> Blueprint:
    """Register the standard routes of `resource` (all of `STANDARD` but those in `omit`) on
    `blueprint` (by default a new one named after the resource) and return it.

    `answer` is the model of one answer, `create` the POST body (`patch`, the PATCH body, is
    derived from it unless given); `read` and `write` the scopes of safe and unsafe calls.
    `summaries` replace the derived summaries by route (`{"delete": "..."}`).
    """
    routes = _Routes(resource, answer, examples, dict(summaries or {}))
    blueprint = blueprint or Blueprint(resource.name)
    if patch is None and create is not None:
        title = resource.singular.capitalize()
        patch = patch_of(
            create, name=f"{title}Patch", doc=f"Body of `PATCH /{resource.name}/{{id}}`."
        )
    made = {
        "list": routes.list_route(read),
        "get": routes.get_route(read),
        "create": routes.create_route(write, create) if create is not None else None,
        "patch": routes.patch_route(write, patch) if patch is not None else None,
        "delete": routes.delete_route(write),
    }
    for name in STANDARD:
        declared = made[name]
        if name not in omit and declared is not None:
            uri, methods, scope, doc, handler = declared
            endpoint(blueprint, uri, methods=methods, scope=scope, doc=doc)(handler)
    return blueprint


_Declared = tuple[str, tuple[str, ...], str, Doc, Handler]


class _Routes:
    """The five handlers of one resource and their declarations."""

    def __init__(
        self,
        resource: Resource,
        answer: type[BaseModel],
        examples: Examples,
        summaries: dict[str, str],
    ) -> None:
        self.resource = resource
        self.answer = answer
        self.examples = examples
        self.summaries = summaries
        self.collection = f"/{resource.name}"
        self.param = f"{resource.singular}_id"
        self.item = f"{self.collection}/<{self.param}:int>"
        self.title = resource.singular.capitalize()
        self.allowed = frozenset(resource.includes)
        self.example_id = {self.param: examples.one["id"]}
        # An include embeds rows a foreign key names: one removed meanwhile is a 409.
        self.read_errors = (409,) if resource.includes else ()

    def _doc(self, route: str, operation: str, summary: str, **more: Any) -> Doc:
        summary = self.summaries.get(route, summary)
        return Doc(operation, summary, self.resource.name, **more)

    def _include(self, request: Request) -> frozenset[str]:
        return flag_list(request, "include", self.allowed) if self.allowed else NOTHING

    def _id(self, params: Mapping[str, int]) -> int:
        return existing_id(params[self.param], self.resource.singular)

    def _name(self, handler: Handler, name: str) -> Handler:
        handler.__name__ = handler.__qualname__ = f"{name}_{self.resource.singular}"
        return handler

    def list_route(self, scope: str) -> _Declared:
        resource = self.resource

        async def handler(request: Request) -> HTTPResponse:
            after, limit = page_params(request)
            include = self._include(request)
            found = await resource.page(work_of(request), after=after, limit=limit, include=include)
            return page_response(request, *found)

        query = include_query(resource.includes, paged=True)
        page = page_of(self.answer, plural=resource.name)
        example_page = {
            "items": [self.examples.one],
            "next": encode_cursor(self.examples.one["id"]),
        }
        doc = self._doc(
            "list",
            f"list{resource.name.capitalize()}",
            f"A page of {resource.name} by id (keyset pagination)",
            answers={200: Answer("The page.", page, example_page)},
            description=_PAGES,
            errors=self.read_errors,
            query=query,
            example={"limit": 1, **({"include": min(self.allowed)} if self.allowed else {})},
        )
        handler.__name__ = handler.__qualname__ = f"list_{resource.name}"
        return self.collection, ("GET",), scope, doc, handler

    def get_route(self, scope: str) -> _Declared:
        resource = self.resource

        async def handler(request: Request, **params: int) -> HTTPResponse:
            row_id = self._id(params)
            found = await resource.one(work_of(request), row_id, self._include(request))
            if found is None:
                raise resource.missing(row_id)
            return json_response(found)

        doc = self._doc(
            "get",
            f"get{self.title}",
            f"One {resource.singular}",
            answers={200: Answer(f"The {resource.singular}.", self.answer, self.examples.one)},
            errors=self.read_errors,
            query=include_query(resource.includes, paged=False),
            example=self.example_id,
        )
        return self.item, ("GET",), scope, doc, self._name(handler, "get")

    def create_route(self, scope: str, body: type[BaseModel]) -> _Declared:
        resource = self.resource

        async def handler(request: Request) -> HTTPResponse:
            values = body_as(request, body).model_dump()
            row = await resource.create(work_of(request), values)
            location = {"location": f"{self.collection}/{row['id']}"}
            return json_response(row, status=201, headers=location)

        new = Answer(
            f"The new {resource.singular}.",
            self.answer,
            self.examples.one,
            {"location": "The path of the new resource."},
        )
        doc = self._doc(
            "create",
            f"create{self.title}",
            f"Create a {resource.singular}",
            answers={201: new},
            body=body,
            body_example=self.examples.create,
        )
        return self.collection, ("POST",), scope, doc, self._name(handler, "create")

    def patch_route(self, scope: str, body: type[BaseModel]) -> _Declared:
        resource = self.resource

        async def handler(request: Request, **params: int) -> HTTPResponse:
            row_id = self._id(params)
            changes = body_as(request, body).model_dump(exclude_unset=True)
            conditions = preconditions_of(request)
            found = await resource.update(
                work_of(request), row_id, changes, preconditions=conditions
            )
            if found is None:
                raise resource.missing(row_id)
            return json_response(found)

        doc = self._doc(
            "patch",
            f"patch{self.title}",
            f"Change some fields of a {resource.singular}",
            answers={200: Answer(f"The {resource.singular} now.", self.answer, self.examples.one)},
            body=body,
            body_example=self.examples.patch,
            example=self.example_id,
            conditions=True,
        )
        return self.item, ("PATCH",), scope, doc, self._name(handler, "patch")

    def delete_route(self, scope: str) -> _Declared:
        resource = self.resource

        async def handler(request: Request, **params: int) -> HTTPResponse:
            row_id = self._id(params)
            conditions = preconditions_of(request)
            if not await resource.delete(work_of(request), row_id, preconditions=conditions):
                raise resource.missing(row_id)
            return empty_response()

        doc = self._doc(
            "delete",
            f"delete{self.title}",
            f"Delete a {resource.singular}",
            answers={204: Answer("Deleted.")},
            errors=(409,) if resource.statements.in_use else (),
            example=self.example_id,
            conditions=True,
        )
        return self.item, ("DELETE",), scope, doc, self._name(handler, "delete")
