"""JSON Schemas of the API description: pydantic models, collected as named components."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Schema = dict[str, Any]
Mode = Literal["validation", "serialization"]
SCHEMAS = "#/components/schemas/"
_NULL = {"type": "null"}


def omit_null_defaults(schema: Schema) -> None:
    """For `json_schema_extra`: a field whose default is None may be left out, never sent null.

    pydantic spells `x: T | None = None` as "T or null"; where None only means "absent" (a
    PATCH field, an answer's omitted key), the schema must say "T, or leave it out".
    """
    for name, prop in schema.get("properties", {}).items():
        branches = prop.get("anyOf")
        if prop.get("default", ...) is not None or not branches or _NULL not in branches:
            continue
        rest = [branch for branch in branches if branch != _NULL]
        del prop["anyOf"], prop["default"]
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
        schema["properties"][name] = prop


def require_some_property(schema: Schema) -> None:
    """For `json_schema_extra` of a patch: fields may be left out, never null, and one is given."""
    omit_null_defaults(schema)
    schema["minProperties"] = 1


def ref(name: str) -> Schema:
    """A reference to the component schema `name`."""
    return {"$ref": SCHEMAS + name}


class Components:
    """The named schemas of one document: each model's JSON Schema, generated once."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def of(self, model: type[BaseModel], *, mode: Mode) -> Schema:
        """A reference to `model`'s schema (in `mode`: validation for inputs, serialization
        for answers), adding it and the models it uses to the components."""
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}", mode=mode)
        for name, nested in schema.pop("$defs", {}).items():
            self._add(name, nested)
        self._add(model.__name__, schema)
        return ref(model.__name__)

    def _add(self, name: str, schema: Schema) -> None:
        known = self.schemas.setdefault(name, schema)
        if known != schema:
            raise ValueError(f"two different schemas are named {name!r}: rename one model")
