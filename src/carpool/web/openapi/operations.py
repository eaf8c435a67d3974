"""What each route does, as OpenAPI operations keyed by (method, path template)."""

from __future__ import annotations

from typing import Any

from carpool.web.openapi.schemas import Schema, ref

Operation = dict[str, Any]

_PROBLEM_TEXT = {
    400: "The request cannot be read.",
    404: "No such resource.",
    409: "It conflicts with the current state.",
    413: "The body is too large.",
    415: "The body is not JSON.",
    422: "Some values are invalid (`errors` points at each).",
    502: "The inventory service failed or answered nonsense.",
    503: "A dependency is not configured or not reachable.",
    504: "It did not finish in time.",
}


def _json(schema: Schema, description: str, *, headers: dict[str, Any] | None = None) -> Any:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/Problem{status}"} for status in statuses}


def problem_responses() -> dict[str, Any]:
    """The shared problem+json responses, one per status, plus the catch-all default."""

    def problem(description: str) -> Any:
        return {
            "description": description,
            "content": {"application/problem+json": {"schema": ref("Problem")}},
        }

    shared = {f"Problem{status}": problem(text) for status, text in _PROBLEM_TEXT.items()}
    shared["ProblemDefault"] = problem("Any other error, as problem+json; never a stack trace.")
    return shared


def _body(name: str) -> Any:
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def _op(summary: str, tag: str, responses: dict[str, Any], **extra: Any) -> Operation:
    return {
        "summary": summary,
        "tags": [tag],
        "responses": {**responses, "default": {"$ref": "#/components/responses/ProblemDefault"}},
        **extra,
    }


_PAGE = [{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/cursor"}]
_INCLUDE = [{"$ref": "#/components/parameters/include"}]
_LOCATION = {"location": {"schema": {"type": "string"}, "description": "The new resource."}}


def _collection(kind: str, one: str, page: str, *, include: bool) -> dict[tuple[str, str], Any]:
    path = f"/{kind}s"
    item = f"/{kind}s/{{{kind}_id}}"
    id_param = [{"$ref": f"#/components/parameters/{kind}_id"}]
    reads = _INCLUDE if include else []
    tag = f"{kind}s"
    return {
        ("get", path): _op(
            f"A page of {kind}s by id (keyset pagination)",
            tag,
            {"200": _json(ref(page), "The page."), **_problems(422)},
            parameters=_PAGE + reads,
        ),
        ("post", path): _op(
            f"Create a {kind}",
            tag,
            {
                "201": _json(ref(one), f"The new {kind}.", headers=_LOCATION),
                **_problems(400, 409, 413, 415, 422),
            },
            requestBody=_body(f"{one}Create"),
        ),
        ("get", item): _op(
            f"One {kind}",
            tag,
            {"200": _json(ref(one), f"The {kind}."), **_problems(404, 422)},
            parameters=id_param + reads,
        ),
        ("patch", item): _op(
            f"Change some fields of a {kind}",
            tag,
            {"200": _json(ref(one), f"The {kind} now."), **_problems(400, 404, 409, 415, 422)},
            parameters=id_param,
            requestBody=_body(f"{one}Patch"),
        ),
        ("delete", item): _op(
            f"Delete a {kind}",
            tag,
            {"204": {"description": "Deleted."}, **_problems(404, 409)},
            parameters=id_param,
        ),
    }


def operations() -> dict[tuple[str, str], Operation]:
    """Every route carpool serves, as `{(method, path template): operation}`."""
    return {
        ("get", "/health"): _op(
            "Liveness: the process serves (touches no database)",
            "operations",
            {"200": _json(ref("Health"), "Up.")},
        ),
        ("get", "/ready"): _op(
            "Readiness: the database answers and its schema is at the migrations' head",
            "operations",
            {"200": _json(ref("Ready"), "Ready."), **_problems(503)},
        ),
        **_collection("grommet", "Grommet", "GrommetPage", include=False),
        **_collection("widget", "Widget", "WidgetPage", include=True),
        ("get", "/widgets/{widget_id}/availability"): _op(
            "How many of a widget the inventory's stock allows, and which grommet limits it",
            "widgets",
            {
                "200": _json(ref("Availability"), "The availability."),
                **_problems(404, 502, 503, 504),
            },
            parameters=[{"$ref": "#/components/parameters/widget_id"}],
        ),
        ("get", "/metrics"): _op(
            "Prometheus metrics of every worker (text format)",
            "operations",
            {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}},
                }
            },
        ),
        ("get", "/batch"): _op(
            "The batch limits in force", "batch", {"200": _json(ref("BatchLimits"), "Limits.")}
        ),
        ("post", "/batch"): _op(
            "Run many sub-requests on one unit of work; one answer for all",
            "batch",
            {
                "200": _json(ref("BatchAnswer"), "Every item's answer, in request order."),
                **_problems(400, 413, 415, 422, 504),
            },
            requestBody=_body("BatchRequest"),
        ),
        ("get", "/ws"): _op(
            "Multiplex requests over one WebSocket (see docs/websocket.md)",
            "websocket",
            {"101": {"description": "Switching to the WebSocket protocol."}},
        ),
        ("get", "/openapi.json"): _op(
            "This document",
            "documentation",
            {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        ),
        ("get", "/docs"): _op(
            "Interactive documentation (Swagger UI, served locally)",
            "documentation",
            {"200": {"description": "An HTML page.", "content": {"text/html": {}}}},
        ),
        ("get", "/docs/assets/{name}"): _op(
            "The docs UI's own scripts and styles",
            "documentation",
            {"200": {"description": "A static file."}, **_problems(404)},
            parameters=[
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        ),
    }


def parameters() -> dict[str, Any]:
    """The shared parameters (ids, pagination, includes)."""

    def id_of(kind: str) -> Any:
        return {
            "name": f"{kind}_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }

    return {
        "grommet_id": id_of("grommet"),
        "widget_id": id_of("widget"),
        "limit": {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        },
        "cursor": {
            "name": "cursor",
            "in": "query",
            "schema": {"type": "string"},
            "description": "The `next` of the previous page.",
        },
        "include": {
            "name": "include",
            "in": "query",
            "schema": {"enum": ["grommets"]},
            "description": "`grommets` embeds each part's grommet.",
        },
    }
