"""Reading what a request carries: a JSON body into a model, ids, pagination and flags."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sanic.request import Request

from carpool.errors import BadRequest, FieldError, Invalid, NotFound, UnsupportedMediaType
from carpool.web.openapi.schemas import omit_null_defaults

M = TypeVar("M", bound=BaseModel)
ID_MAX = 2**63 - 1
PAGE_DEFAULT = 50
PAGE_MAX = 500
MAX_FIELD_ERRORS = 50
JSON_MAX_DEPTH_DEFAULT = 64
# ASCII digits only, and few of them: str.isdigit() takes '²' and int() refuses 5000 digits.
_NUMBER = re.compile(r"[0-9]{1,19}")
# What each input pattern means, said as the rule a client can act on (see `pattern_rule`).
_PATTERN_RULES: dict[str, str] = {}


def pattern_rule(pattern: str, rule: str) -> str:
    """`pattern`, registered so that a value that fails it is told `rule`, not the regex."""
    _PATTERN_RULES[pattern] = rule
    return pattern


# Exactly the cursors `encode_cursor` makes: base64url of "after:<1 to 19 digits>", unpadded.
# One pattern both refuses every other string and tells the API description what a cursor is.
_DIGITS3 = r"(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"
_DIGITS1 = r"(?:[MN][AQgw]|O[AQ])"
_DIGITS2 = r"(?:[MN][DTjz]|O[DT])[AEIMQUYcgk]"
CURSOR_PATTERN = pattern_rule(
    rf"^YWZ0ZXI6(?:(?:{_DIGITS3}){{1,6}}|(?:{_DIGITS3}){{0,6}}{_DIGITS1}"
    rf"|(?:{_DIGITS3}){{0,5}}{_DIGITS2})$",
    "cursor is not one this API returned",
)
_CURSOR = re.compile(CURSOR_PATTERN)


class PageQuery(BaseModel):
    """The query of a keyset-paginated list (read by `page_params`)."""

    model_config = ConfigDict(json_schema_extra=omit_null_defaults)

    limit: int = Field(
        PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="Items per page.", examples=[20]
    )
    cursor: str | None = Field(
        None,
        pattern=CURSOR_PATTERN,
        description="The `next` of the previous page.",
        examples=["YWZ0ZXI6MQ"],
    )


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` (decoded JSON) nests arrays and objects more than `limit` levels deep.

    Iterative, and it stops at the first level past `limit`: no input can exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def too_deep(limit: int) -> Invalid:
    """The 422 of a JSON body nested deeper than `limit` (JSON_MAX_DEPTH)."""
    error = FieldError(f"the JSON is nested deeper than {limit} levels", pointer="")
    return Invalid("The request body is invalid.", [error])


def check_depth(value: Any, limit: int) -> Any:
    """`value` if it nests at most `limit` levels deep; else the `too_deep` 422."""
    if depth_exceeds(value, limit):
        raise too_deep(limit)
    return value


def max_depth(request: Request) -> int:
    """The app's JSON_MAX_DEPTH."""
    return int(getattr(request.app.config, "JSON_MAX_DEPTH", JSON_MAX_DEPTH_DEFAULT))


def json_body(request: Request, *, bounded: bool = True) -> Any:
    """The decoded JSON body: 415 if it is not JSON (application/json or any +json), 400 if
    it cannot be read, 422 if `bounded` and it nests deeper than JSON_MAX_DEPTH (a batch
    checks its items' bodies one by one instead)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        data = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    return check_depth(data, max_depth(request)) if bounded else data


def body_as(request: Request, model: type[M]) -> M:
    """The JSON body validated as `model`: 415 if not JSON, 400 if unreadable, 422 if invalid."""
    data = json_body(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("The request body is invalid.", field_errors(exc)) from None


def field_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as FieldErrors pointing (JSON Pointer) at the offending values."""
    out = []
    # A body of a thousand bad fields gets the first MAX_FIELD_ERRORS: enough to act on,
    # and an answer that cannot be many times larger than the request.
    for error in exc.errors(include_url=False)[:MAX_FIELD_ERRORS]:
        pointer = "".join(f"/{_escape(part)}" for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch":
            pattern = str((error.get("ctx") or {}).get("pattern", ""))
            message = _PATTERN_RULES.get(pattern, f"String must match the pattern {pattern}")
        elif error["type"] == "model_type":  # pydantic's message names our classes
            message = "Input should be a JSON object"
        out.append(FieldError(message, pointer=pointer))
    return out


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def existing_id(value: int, kind: str) -> int:
    """`value` if it could be an id; an id no row can have is simply not found."""
    if not 1 <= value <= ID_MAX:
        raise NotFound(f"{kind} {value} does not exist")
    return value


def page_params(request: Request) -> tuple[int, int]:
    """`(after_id, limit)` from `?cursor=` and `?limit=` (422 for bad values)."""
    limit_text = request.args.get("limit")
    limit = PAGE_DEFAULT
    if limit_text is not None:
        if not _NUMBER.fullmatch(limit_text) or not 1 <= int(limit_text) <= PAGE_MAX:
            raise Invalid(
                "The query is invalid.",
                [FieldError(f"limit must be an integer from 1 to {PAGE_MAX}", parameter="limit")],
            )
        limit = int(limit_text)
    cursor = request.args.get("cursor")
    return (decode_cursor(cursor) if cursor is not None else 0), limit


def encode_cursor(last_id: int) -> str:
    """An opaque cursor meaning "after `last_id`"."""
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def next_link(request: Request, cursor: str) -> str:
    """A `Link` header value pointing at the page after this one: the same path and query,
    with `cursor` replaced (RFC 8288)."""
    kept = [(name, value) for name, value in request.query_args if name != "cursor"]
    query = urlencode([*kept, ("cursor", cursor)])
    return f'<{request.path}?{query}>; rel="next"'


def decode_cursor(cursor: str) -> int:
    """The id a cursor made by `encode_cursor` points after (422 if it is not one)."""
    try:
        if not _CURSOR.fullmatch(cursor):
            raise ValueError(cursor)
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == "after" and _NUMBER.fullmatch(number):
            # Past the largest id (19 digits can say more than a bigint holds): nothing
            # follows, an empty last page. The cursor is one the API description admits.
            return min(int(number), ID_MAX)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Invalid(
        "The query is invalid.",
        [FieldError("cursor is not one this API returned", parameter="cursor")],
    )


def flag_list(request: Request, name: str, allowed: frozenset[str]) -> frozenset[str]:
    """The comma-separated values of `?name=`, each one of `allowed` (422 otherwise)."""
    values = {v for raw in request.args.getlist(name, []) for v in raw.split(",") if v}
    unknown = sorted(values - allowed)
    if unknown:
        raise Invalid(
            "The query is invalid.",
            [FieldError(f"unknown {name} value(s): {', '.join(unknown)}", parameter=name)],
        )
    return frozenset(values)
