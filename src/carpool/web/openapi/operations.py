"""An OpenAPI operation generated from a route's declaration (`Endpoint` and its `Doc`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from sanic_routing import Route

from carpool.route_names import path_parameters
from carpool.web import http_doc
from carpool.web.endpoints import AUTHENTICATED, PUBLIC, Answer, Doc, Endpoint
from carpool.web.openapi.schemas import Components, Schema, ref
from carpool.web.responses import JSON, PROBLEM_JSON, Problem

Operation = dict[str, Any]
# What a problem of each status means, wherever it is answered.
PROBLEM_TEXT = {
    400: "The request cannot be read.",
    401: "No valid bearer token (`WWW-Authenticate: Bearer` says why; see docs/security.md).",
    403: "The token lacks the scope this operation needs (`WWW-Authenticate` names it).",
    404: "No such resource (an id that is not a number names nothing, too).",
    405: "The path does not take this method; `Allow` lists those it takes.",
    409: "It conflicts with the current state, or lost a race with another writer, or a call"
    " with the same Idempotency-Key is still running; retry.",
    412: "If-Match / If-None-Match did not hold (the resource changed since it was read);"
    " nothing was done.",
    413: "The body is too large.",
    415: "The body is not JSON.",
    422: "Some values are invalid (`errors` points at each), or the Idempotency-Key was used"
    " for another request.",
    429: "Past the caller's rate limit (`Retry-After`, `RateLimit` and `RateLimit-Policy`).",
    502: "A service carpool calls failed or answered nonsense.",
    503: "A dependency is not configured, not reachable or busy (`Retry-After` says when to"
    " retry), or the database refused to commit.",
    504: "It did not finish in time.",
}
_BODY_ERRORS = (400, 413, 415, 422)  # what reading a JSON body into a model can answer
_CONVERTERS: dict[str, Schema] = {
    "int": {"type": "integer", "description": "A number; one that names nothing answers 404."},
    "str": {"type": "string", "pattern": "^[^/]+$"},
}


def problem_responses() -> dict[str, Any]:
    """The shared problem+json responses, one per status, each with an example."""
    return {
        f"Problem{status}": _problem_response(status, text) for status, text in PROBLEM_TEXT.items()
    } | {"ProblemDefault": _problem_response(500, "Any other error; never a stack trace.")}


def _problem_response(status: int, description: str) -> Any:
    example = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": description,
    }
    content = {"schema": ref(Problem.__name__), "example": example}
    return {"description": description, "content": {PROBLEM_JSON: content}}


def operation(declared: Endpoint, route: Route, method: str, components: Components) -> Operation:
    """The OpenAPI operation of `method` on `route`, as the route declares it."""
    doc = declared.doc
    components.of(Problem, mode="serialization")
    parameters = _path_parameters(route, doc) + _query_parameters(doc)
    generated: Operation = {
        "operationId": doc.operation_id,
        "summary": doc.summary,
        "tags": [doc.tag],
    }
    description = http_doc.description(declared, method)
    if description:
        generated["description"] = description
    if parameters:
        generated["parameters"] = parameters
    if doc.body is not None:
        body: dict[str, Any] = {"schema": components.of(doc.body, mode="validation")}
        if doc.body_example is not None:
            body["example"] = doc.body_example
        generated["requestBody"] = {"required": True, "content": {JSON: body}}
    generated["responses"] = _responses(declared, route, method, components)
    generated["security"] = security_of(declared)
    return generated


def security_of(declared: Endpoint) -> list[dict[str, list[str]]]:
    """Who may call it: nobody needs a token (`[]`), or a bearer token with the route's scope
    (any scope for a batch or the socket, whose parts check their own)."""
    if declared.scope is PUBLIC:
        return []
    scopes = [] if declared.scope == AUTHENTICATED else [declared.scope]
    return [{BEARER: scopes}]


BEARER = "bearerAuth"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT with `sub`, `exp` and `scope` (space-separated: `catalog:read`,"
        " `catalog:write`); `.venv/bin/carpool token` makes one (docs/security.md).",
    }
}


def head_of(get: Operation) -> Operation:
    """HEAD of a GET route: the same operation, answering headers only."""
    head = {**get, "summary": f"{get['summary']} (headers only)"}
    head["operationId"] = f"{get['operationId']}Head"
    head["responses"] = {
        status: {key: value for key, value in answer.items() if key != "content"}
        for status, answer in get["responses"].items()
    }
    return head


def _responses(
    declared: Endpoint, route: Route, method: str, components: Components
) -> dict[str, Any]:
    answers = http_doc.answers(declared, method)
    responses = {str(status): _answer(answer, components) for status, answer in answers.items()}
    for status in sorted(_error_statuses(declared, route, method)):
        responses[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    responses["default"] = {"$ref": "#/components/responses/ProblemDefault"}
    return responses


def _error_statuses(declared: Endpoint, route: Route, method: str) -> set[int]:
    doc = declared.doc
    statuses = set(doc.errors) | http_doc.pipeline_statuses(declared, method)
    if doc.body is not None:
        statuses.update(_BODY_ERRORS)
    if doc.query is not None:
        statuses.add(422)
    if path_parameters(route.uri):
        statuses.add(404)
    return statuses


def _answer(answer: Answer, components: Components) -> Any:
    out: dict[str, Any] = {"description": answer.description}
    if answer.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    if answer.model is None and answer.example is None and answer.media_type == JSON:
        return out  # no body (204, 101)
    content: dict[str, Any] = {}
    if answer.model is not None:
        content["schema"] = components.of(answer.model, mode="serialization")
    if answer.example is not None:
        content["example"] = answer.example
    out["content"] = {answer.media_type: content}
    return out


def _path_parameters(route: Route, doc: Doc) -> list[Any]:
    declared = _properties(doc.path) if doc.path is not None else {}
    parameters = []
    for name, converter in path_parameters(route.uri):
        schema = declared.get(name) or _CONVERTERS.get(converter, {"type": "string"})
        parameters.append(_parameter(name, "path", schema, doc, required=True))
    return parameters


def _query_parameters(doc: Doc) -> list[Any]:
    if doc.query is None:
        return []
    required = set(doc.query.model_json_schema().get("required", ()))
    return [
        _parameter(name, "query", schema, doc, required=name in required)
        for name, schema in _properties(doc.query).items()
    ]


def _properties(model: Any) -> dict[str, Schema]:
    schema = model.model_json_schema(mode="validation")
    return {
        name: {key: value for key, value in prop.items() if key != "title"}
        for name, prop in schema.get("properties", {}).items()
    }


def _parameter(name: str, where: str, schema: Schema, doc: Doc, *, required: bool) -> Any:
    schema = dict(schema)
    description = schema.pop("description", None)
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    if where == "query" and not required:
        # Sanic reads `?limit=` as no limit at all: a blank value is the parameter left out.
        parameter["allowEmptyValue"] = True
    if name in doc.example:
        parameter["example"] = doc.example[name]
    elif schema.get("examples"):
        parameter["example"] = schema["examples"][0]
    return parameter
