"""The `POST /batch` envelope: its two forms, validated into a list of BatchItems; and the
models of the batch's request and answer, whose JSON Schemas the API description shows."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    ValidationError,
    create_model,
)

from carpool.errors import FieldError, Invalid
from carpool.web.inputs import field_errors, pattern_rule
from carpool.web.unit_scope import SAFE_METHODS

METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_ID = pattern_rule(r"^[^/{}\s]+$", "An id must not contain '/', '{', '}' or whitespace")
_ABSOLUTE = pattern_rule(r"^/", "A path must start with / (it is the path of this API's URL)")


def _any_case(words: frozenset[str]) -> str:
    # Methods are read in any case; JSON Schema's regular expressions have no (?i).
    spelt = ("".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in sorted(words))
    return f"^(?:{'|'.join(spelt)})$"


ItemId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_ID)]
MAX_PATH = 8192
Path = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH, pattern=_ABSOLUTE)]
Method = Annotated[
    str,
    StringConstraints(to_upper=True),
    Field(description="Any case.", json_schema_extra={"pattern": _any_case(METHODS)}),
]


_ITEM_KEY = "an item cannot carry an Idempotency-Key: put it on the batch, which runs as one"


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One sub-request of a batch, before its references are resolved."""

    index: int
    id: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    has_body: bool
    safe: bool = False
    """Whether the item only reads (and may run concurrently with its neighbours): set from
    its method when made."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "safe", self.method in SAFE_METHODS)


class SubRequestFields(BaseModel):
    """What a batch item and a WebSocket request frame both carry (and nothing else)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    method: Method = "GET"
    path: Path
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class BatchRequestItem(SubRequestFields):
    """One sub-request of a batch; its id defaults to its index."""

    id: ItemId | None = None


class BatchFullForm(BaseModel):
    """A batch, full form: items run in order on one unit of work; atomic by default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    atomic: bool = True
    requests: list[BatchRequestItem] = Field(min_length=1)


class BatchShortForm(BaseModel):
    """A batch, short form: GET each path; the ids are the paths (the n-th repeat of a path,
    n >= 2, is `path#n`); not atomic."""

    model_config = ConfigDict(extra="forbid", strict=True)

    load: list[Path] = Field(min_length=1)


class BatchRequest(RootModel[BatchFullForm | BatchShortForm]):
    """A `POST /batch` body (docs/batch.md); `{{id/json-pointer}}` strings refer to earlier
    items' answers."""


@functools.cache
def batch_request_model(max_items: int) -> type[BaseModel]:
    """`BatchRequest` with the item limit in force, for the API description."""

    limit = Field(min_length=1, max_length=max_items)
    full = create_model(
        "BatchFullForm",
        __base__=BatchFullForm,
        __doc__=BatchFullForm.__doc__,
        requests=(list[BatchRequestItem], limit),
    )
    short = create_model(
        "BatchShortForm",
        __base__=BatchShortForm,
        __doc__=BatchShortForm.__doc__,
        load=(list[Path], limit),
    )
    root: type[BaseModel] = RootModel[full | short]  # type: ignore[valid-type]
    return create_model("BatchRequest", __base__=root, __doc__=BatchRequest.__doc__)


class BatchItemAnswer(BaseModel):
    """One item's answer: its body is the single route's body, byte for byte (null if none)."""

    id: str
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(description="The handler's own headers (e.g. location).")
    body: Any = Field(description="The single route's JSON body, or null.")


class BatchAnswer(BaseModel):
    """The answer of a batch whose envelope is valid: every item's answer, in request order."""

    committed: bool = Field(description="false: nothing the batch did was kept.")
    responses: list[BatchItemAnswer]


class BatchLimits(BaseModel):
    """The batch limits in force."""

    max_items: int = Field(ge=1)
    timeout_s: float = Field(gt=0)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated batch: its items in request order, and whether it is all-or-nothing."""

    atomic: bool
    items: tuple[BatchItem, ...]


def parse_envelope(data: Any, *, max_items: int) -> Envelope:
    """Validate a decoded batch body; Invalid (422) with per-field errors otherwise."""
    model: type[BatchFullForm] | type[BatchShortForm]
    model = BatchShortForm if isinstance(data, dict) and "load" in data else BatchFullForm
    _check_size(data, max_items=max_items)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("The batch envelope is invalid.", field_errors(exc)) from None
    if isinstance(parsed, BatchShortForm):
        ids = _short_form_ids(parsed.load)
        items = [
            BatchItem(i, item_id, "GET", path, {}, None, False)
            for i, (item_id, path) in enumerate(zip(ids, parsed.load, strict=True))
        ]
        envelope = Envelope(atomic=False, items=tuple(items))
        pointer = "/load"
    else:
        envelope = Envelope(atomic=parsed.atomic, items=tuple(_items(parsed.requests)))
        pointer = "/requests"
    _check(envelope, pointer=pointer)
    return envelope


def _short_form_ids(paths: list[str]) -> list[str]:
    """Each path is its item's id; a path's n-th occurrence (n >= 2) is `path#n`."""
    ids: list[str] = []
    taken: set[str] = set()
    next_n: dict[str, int] = {}  # each path's next occurrence number: no rescans from 1
    for path in paths:
        n = next_n.get(path, 1)
        item_id = path if n == 1 else f"{path}#{n}"
        while item_id in taken:  # a literal `path#n` sent earlier took it
            n += 1
            item_id = f"{path}#{n}"
        next_n[path] = n + 1
        taken.add(item_id)
        ids.append(item_id)
    return ids


def _items(requests: list[BatchRequestItem]) -> list[BatchItem]:
    return [
        BatchItem(
            index=i,
            id=item.id if item.id is not None else str(i),
            method=item.method,
            path=item.path,
            headers=item.headers,
            body=item.body,
            has_body="body" in item.model_fields_set,
        )
        for i, item in enumerate(requests)
    ]


def _check_size(data: Any, *, max_items: int) -> None:
    # Before the items are validated: 100,000 bad items would cost seconds and megabytes.
    for key in ("requests", "load"):
        listed = data.get(key) if isinstance(data, dict) else None
        if isinstance(listed, list) and len(listed) > max_items:
            error = FieldError(
                f"a batch holds at most {max_items} items; split it", pointer=f"/{key}"
            )
            raise Invalid("The batch envelope is invalid.", [error])


def _check(envelope: Envelope, *, pointer: str) -> None:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for item in envelope.items:
        if item.method not in METHODS:
            where = f"{pointer}/{item.index}/method"
            errors.append(FieldError(f"unknown method {item.method!r}", pointer=where))
        if any(name.lower() == "idempotency-key" for name in item.headers):
            where = f"{pointer}/{item.index}/headers"
            errors.append(FieldError(_ITEM_KEY, pointer=where))
        if item.id in seen:
            where = f"{pointer}/{item.index}" + ("" if pointer == "/load" else "/id")
            errors.append(FieldError(f"duplicate id {item.id!r}", pointer=where))
        seen.add(item.id)
    if errors:
        raise Invalid("The batch envelope is invalid.", errors)
