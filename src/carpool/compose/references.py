"""`{{id/json-pointer}}` references between batch items: finding and substituting them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import orjson

REFERENCE = re.compile(r"\{\{([^/{}\s]+)(/[^{}]*)?\}\}")
# RFC 6901 array indexes: ASCII digits, no leading zero (str.isdigit() takes "²", and int()
# refuses 5,000 digits); 18 digits is already more than any list holds.
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")


class Unresolvable(Exception):
    """A reference whose item failed, or whose pointer leads nowhere."""


class TooLarge(Exception):
    """References that would make an item larger than any single request may be."""


def referenced_ids(value: Any) -> Iterator[str]:
    """Every item id that `value` (a path, or a decoded JSON body) refers to."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield match.group(1)
    elif isinstance(value, list):
        for element in value:
            yield from referenced_ids(element)
    elif isinstance(value, dict):
        for key, element in value.items():
            yield from referenced_ids(key)
            yield from referenced_ids(element)


Lookup = Callable[[str, str], Any]  # (item id, JSON pointer) -> the JSON value there


def substitute_body(value: Any, lookup: Lookup) -> Any:
    """`value` with references replaced: a whole-string reference by the JSON value itself
    (a number stays a number), a reference inside a longer string by its text."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole is not None:
            return lookup(whole.group(1), whole.group(2) or "")
        return substitute_text(value, lookup)
    if isinstance(value, list):
        return [substitute_body(element, lookup) for element in value]
    if isinstance(value, dict):
        # A key is always a string: a reference in it is substituted as text.
        return {
            substitute_text(key, lookup): substitute_body(element, lookup)
            for key, element in value.items()
        }
    return value


def substitute_text(text: str, lookup: Lookup) -> str:
    """`text` (a header value, an object key) with each reference replaced by its value as text."""
    return REFERENCE.sub(lambda m: _text(lookup(m.group(1), m.group(2) or "")), text)


def substitute_path(path: str, lookup: Lookup) -> str:
    """`path` with each reference replaced by its value as text, percent-encoded."""
    return REFERENCE.sub(
        lambda m: quote(_text(lookup(m.group(1), m.group(2) or "")), safe=""), path
    )


def bounded(lookup: Lookup, *, max_bytes: int) -> Lookup:
    """`lookup`, raising TooLarge once the values it returned add up to more than `max_bytes`
    of JSON: a few bytes of references must not expand into gigabytes."""
    sizes: dict[tuple[str, str], int] = {}
    spent = 0

    def bounded_lookup(item_id: str, pointer: str) -> Any:
        nonlocal spent
        value = lookup(item_id, pointer)
        size = sizes.get((item_id, pointer))
        if size is None:
            size = sizes[(item_id, pointer)] = len(orjson.dumps(value))
        spent += size
        if spent > max_bytes:
            raise TooLarge(f"its references expand past the limit of {max_bytes} bytes")
        return value

    return bounded_lookup


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value RFC 6901 `pointer` designates in `document`; Unresolvable if none."""
    if pointer == "":
        return document
    current = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and _INDEX.fullmatch(token) and int(token) < len(current):
            current = current[int(token)]
        else:
            raise Unresolvable(f"the pointer {pointer} leads nowhere")
    return current
