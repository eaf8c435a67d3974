"""JSON Schemas of what carpool's routes take and answer (the document's components)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from carpool.catalog.models import ID_MAX, NAME_MAX
from carpool.catalog.schemas import GrommetCreate, GrommetPatch, WidgetCreate, WidgetPatch

Schema = dict[str, Any]
_REF = "#/components/schemas/{model}"


def ref(name: str) -> Schema:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


_ID: Schema = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
_TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": NAME_MAX}
_CURSOR: Schema = {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page."}

_OUTPUTS: dict[str, Schema] = {
    "Problem": {
        **_object(
            {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": ref("FieldError")},
            },
            optional=("errors",),
        ),
        "description": "RFC 9457 problem details (application/problem+json).",
    },
    "FieldError": _object(
        {
            "detail": {"type": "string"},
            "pointer": {"type": "string", "description": "JSON Pointer into the body."},
            "parameter": {"type": "string", "description": "The query parameter at fault."},
        },
        optional=("pointer", "parameter"),
    ),
    "Grommet": _object(
        {
            "id": _ID,
            "name": _NAME,
            "material": {"type": "string"},
            "diameter_mm": {"type": "number", "exclusiveMinimum": 0},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        }
    ),
    "WidgetPart": _object({"grommet_id": _ID, "quantity": {"type": "integer", "minimum": 1}}),
    "WidgetPartWithGrommet": _object(
        {"grommet": ref("Grommet"), "quantity": {"type": "integer", "minimum": 1}}
    ),
    "Widget": _object(
        {
            "id": _ID,
            "name": _NAME,
            "parts": {
                "type": "array",
                "items": {"anyOf": [ref("WidgetPart"), ref("WidgetPartWithGrommet")]},
                "description": "With ?include=grommets each part embeds its grommet.",
            },
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        }
    ),
    "GrommetPage": _object({"items": {"type": "array", "items": ref("Grommet")}, "next": _CURSOR}),
    "WidgetPage": _object({"items": {"type": "array", "items": ref("Widget")}, "next": _CURSOR}),
    "Availability": _object(
        {
            "widget_id": _ID,
            "buildable": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "Whole widgets the stock allows; null for a widget with no parts.",
            },
            "limited_by": {
                "type": ["integer", "null"],
                "description": "The grommet that allows the fewest (lowest id among equals).",
            },
            "parts": {
                "type": "array",
                "items": _object(
                    {
                        "grommet_id": _ID,
                        "quantity": {"type": "integer", "minimum": 1},
                        "available": {"type": "integer", "minimum": 0},
                        "enough_for": {"type": "integer", "minimum": 0},
                    }
                ),
            },
        }
    ),
    "Health": _object({"status": {"const": "ok"}}),
    "Ready": _object({"status": {"const": "ready"}, "revision": {"type": ["string", "null"]}}),
}

_BATCH: dict[str, Schema] = {
    "BatchRequest": {
        "oneOf": [ref("BatchFullForm"), ref("BatchShortForm")],
        "description": "See docs/batch.md. Strings `{{id/json-pointer}}` refer to earlier items.",
    },
    "BatchFullForm": {
        **_object(
            {
                "atomic": {"type": "boolean", "default": True},
                "requests": {"type": "array", "minItems": 1, "items": ref("BatchItem")},
            },
            optional=("atomic",),
        ),
        "additionalProperties": False,
    },
    "BatchShortForm": {
        **_object(
            {
                "load": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^/"},
                    "description": "Paths to GET; each item's id is its path; not atomic.",
                }
            }
        ),
        "additionalProperties": False,
    },
    "BatchItem": {
        **_object(
            {
                "id": {"type": "string", "minLength": 1, "maxLength": 100},
                "method": {
                    "enum": ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
                    "default": "GET",
                },
                "path": {"type": "string", "pattern": "^/", "maxLength": 8192},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"description": "Any JSON value, sent as the item's JSON body."},
            },
            optional=("id", "method", "headers", "body"),
        ),
        "additionalProperties": False,
    },
    "BatchAnswer": _object(
        {
            "committed": {"type": "boolean"},
            "responses": {"type": "array", "items": ref("BatchItemAnswer")},
        }
    ),
    "BatchItemAnswer": _object(
        {
            "id": {"type": "string"},
            "status": {"type": "integer"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"description": "The single route's body, byte for byte (null if empty)."},
        }
    ),
    "BatchLimits": _object(
        {"max_items": {"type": "integer", "minimum": 1}, "timeout_s": {"type": "number"}}
    ),
}

_INPUTS: tuple[type[BaseModel], ...] = (GrommetCreate, GrommetPatch, WidgetCreate, WidgetPatch)


def components() -> dict[str, Schema]:
    """Every named schema: the input models' own JSON Schemas, and the answers'."""
    schemas: dict[str, Schema] = {}
    for model in _INPUTS:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas.update(_OUTPUTS)
    schemas.update(_BATCH)
    return schemas
