"""The models of a resource: strict inputs, a patch derived from the create model, answers.

A resource's columns are stated in its table and once in its create model; `patch_of`
derives the PATCH body (every field optional, never null, at least one given: Litestar's
`partial` DTO), `answer_of` the answer (the id, the fields, the timestamps), `page_of` a
page of answers, `include_query` the `?include=` a resource's reads take.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from carpool.web.inputs import ID_MAX, PageQuery, pattern_rule
from carpool.web.openapi.schemas import omit_null_defaults, require_some_property

# PostgreSQL text cannot hold NUL; refusing it here keeps it a 422 instead of a 500.
NO_NUL = pattern_rule(r"^[^\x00]*$", "String must not contain NUL characters")
# Exactly what str.isspace() calls whitespace, spelt so that JSON Schema can say it too.
_BLANK = "^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
_BLANK_RE = re.compile(_BLANK)
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
T = TypeVar("T")


def _not_blank(value: str) -> str:
    # A name of spaces alone would show as nothing, and differ from another only in width.
    if value and _BLANK_RE.fullmatch(value):
        raise ValueError("must not be blank (only whitespace)")
    return value


NOT_BLANK = AfterValidator(_not_blank)
NOT_BLANK_SCHEMA = Field(json_schema_extra={"not": {"pattern": _BLANK}})
NAME_MAX = 200
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_MAX, pattern=NO_NUL),
    NOT_BLANK,
    NOT_BLANK_SCHEMA,
]
"""A name: 1 to 200 characters, neither blank nor holding NUL (for other lengths, the same
pieces: `StringConstraints(..., pattern=NO_NUL), NOT_BLANK, NOT_BLANK_SCHEMA`)."""


class Input(BaseModel):
    """An input body: unknown fields and wrong types refused, nothing coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Patch(Input):
    """A PATCH body: fields may be left out but never null (but those in `nullable`, which
    a POST may set null too), and at least one is given (the schema says so too)."""

    model_config = ConfigDict(json_schema_extra=require_some_property)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: T, info: ValidationInfo) -> T:
        # A field validator, not the model's, so that the error points at the field.
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("cannot be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Patch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class Output(BaseModel):
    """An answer's model (for the API description: answers are encoded from rows)."""

    model_config = ConfigDict(json_schema_extra=omit_null_defaults)


def _hints(model: type[BaseModel]) -> dict[str, Any]:
    """The fields' annotations as written (constraints and all), resolved in their module."""
    namespace = vars(sys.modules[model.__module__])
    hints = get_type_hints(model, globalns=namespace, include_extras=True)
    return {name: hints[name] for name in model.model_fields}


def _admits_none(hint: Any) -> bool:
    return type(None) in get_args(hint)


def _no_default(schema: dict[str, Any]) -> None:
    # Null is a value here, not "left out": `omit_null_defaults` must keep it.
    schema.pop("default", None)


_NULLABLE_OPTIONAL = Field(None, json_schema_extra=_no_default)


def patch_of(create: type[BaseModel], *, name: str, doc: str) -> type[Patch]:
    """The PATCH body of a resource whose POST body is `create`: any non-empty subset (a
    field `create` takes null for may be set null)."""
    hints = _hints(create)
    nullable = frozenset(field for field, hint in hints.items() if _admits_none(hint))
    fields: Any = {
        field: (hint, _NULLABLE_OPTIONAL) if field in nullable else (hint | None, None)
        for field, hint in hints.items()
    }
    model: Any = create_model(
        name, __base__=Patch, __doc__=doc, __module__=create.__module__, **fields
    )
    model.nullable = nullable
    patch: type[Patch] = model
    return patch


def embedded_key(column: str) -> str:
    """The key an included row takes in place of the column that names it: `maker` for
    `maker_id`."""
    return column.removesuffix("_id")


def _either(schema: dict[str, Any], model: Any) -> None:
    """The schema of an answer says: each embeddable column, or the object in its place."""
    omit_null_defaults(schema)
    for column in model.embedded:
        either = [{"required": [column]}, {"required": [embedded_key(column)]}]
        schema.setdefault("allOf", []).append({"oneOf": either})


class _Embedding(Output):
    """An answer in which `?include=` may put an object in place of a column."""

    embedded: ClassVar[frozenset[str]] = frozenset()  # the columns
    model_config = ConfigDict(json_schema_extra=_either)


def answer_of(
    create: type[BaseModel],
    *,
    name: str,
    doc: str,
    embeds: dict[str, type[BaseModel]] | None = None,
) -> type[Output]:
    """The answer of a resource whose POST body is `create`: `id`, its fields, timestamps.
    `embeds` (column: the answer model of the row it names) are the objects `?include=`
    may put in a column's place (`embedded_key`)."""
    embeds = embeds or {}
    fields: dict[str, Any] = {"id": (Id, ...)}
    for field, hint in _hints(create).items():
        fields[field] = (hint, _NULLABLE_OPTIONAL if field in embeds else ...)
        if field in embeds:
            fields[embedded_key(field)] = (embeds[field] | None, _NULLABLE_OPTIONAL)
    fields.update({"created_at": (datetime, ...), "updated_at": (datetime, ...)})
    base = _Embedding if embeds else Output
    made: Any = create_model(
        name, __base__=base, __doc__=doc, __module__=create.__module__, **fields
    )
    made.embedded = frozenset(embeds)
    answer: type[Output] = made
    return answer


_NEXT = Field(description="Pass as ?cursor= for the next page; null on the last page.")


def page_of(answer: type[BaseModel], *, plural: str) -> type[Output]:
    """A keyset page of `answer`s: `{"items": [...], "next": <cursor or null>}`."""
    fields: Any = {"items": (list[answer], ...), "next": (str | None, _NEXT)}  # type: ignore[valid-type]
    return create_model(
        f"{answer.__name__}Page",
        __base__=Output,
        __doc__=f"A page of {plural} by id.",
        __module__=answer.__module__,
        **fields,
    )


def include_query(includes: dict[str, str], *, paged: bool) -> type[BaseModel] | None:
    """The query model of `?include=` (name: what it does), and of a page if `paged`; None
    for a resource without includes that is not paged."""
    if not includes:
        return PageQuery if paged else None
    names = sorted(includes)
    alternatives = names[0] if len(names) == 1 else "(?:" + "|".join(names) + ")"
    # The comma-separated values `flag_list` reads: any mix of the names and empty values.
    pattern = rf"^,*({alternatives}(,+{alternatives})*,*)?$"
    said = "; ".join(f"`{name}` {what}" for name, what in sorted(includes.items()))
    include: Any = (
        str | None,
        Field(None, pattern=pattern, description=f"{said}.", examples=[names[0]]),
    )
    base: Any = PageQuery if paged else Output
    return create_model(
        "PageIncludeQuery" if paged else "IncludeQuery", __base__=base, include=include
    )
