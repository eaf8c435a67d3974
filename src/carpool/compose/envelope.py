"""The `POST /batch` envelope: its two forms, validated into a list of BatchItems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from carpool.errors import FieldError, Invalid
from carpool.web.inputs import field_errors, pattern_rule
from carpool.web.unit_scope import SAFE_METHODS

METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_ID = pattern_rule(r"^[^/{}\s]+$", "An id must not contain '/', '{', '}' or whitespace")
_ABSOLUTE = pattern_rule(r"^/", "A path must start with / (it is the path of this API's URL)")
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_ID)]
Path = Annotated[str, StringConstraints(min_length=1, max_length=8192, pattern=_ABSOLUTE)]
Method = Annotated[str, StringConstraints(to_upper=True)]


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

    @property
    def safe(self) -> bool:
        """Whether the item only reads (and may run concurrently with its neighbours)."""
        return self.method in SAFE_METHODS


class SubRequestFields(BaseModel):
    """What a batch item and a WebSocket request frame both carry (and nothing else)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    method: Method = "GET"
    path: Path
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class _Item(SubRequestFields):
    id: ItemId | None = None


class _FullForm(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    atomic: bool = True
    requests: list[_Item] = Field(min_length=1)


class _ShortForm(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    load: list[Path] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated batch: its items in request order, and whether it is all-or-nothing."""

    atomic: bool
    items: tuple[BatchItem, ...]


def parse_envelope(data: Any, *, max_items: int) -> Envelope:
    """Validate a decoded batch body; Invalid (422) with per-field errors otherwise."""
    model: type[_FullForm] | type[_ShortForm]
    model = _ShortForm if isinstance(data, dict) and "load" in data else _FullForm
    _check_size(data, max_items=max_items)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("The batch envelope is invalid.", field_errors(exc)) from None
    if isinstance(parsed, _ShortForm):
        items = [
            BatchItem(i, path, "GET", path, {}, None, False) for i, path in enumerate(parsed.load)
        ]
        envelope = Envelope(atomic=False, items=tuple(items))
        pointer = "/load"
    else:
        envelope = Envelope(atomic=parsed.atomic, items=tuple(_items(parsed.requests)))
        pointer = "/requests"
    _check(envelope, pointer=pointer)
    return envelope


def _items(requests: list[_Item]) -> list[BatchItem]:
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
        if item.id in seen:
            where = f"{pointer}/{item.index}" + ("" if pointer == "/load" else "/id")
            errors.append(FieldError(f"duplicate id {item.id!r}", pointer=where))
        seen.add(item.id)
    if errors:
        raise Invalid("The batch envelope is invalid.", errors)
