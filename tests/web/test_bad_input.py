"""Input the app must refuse: each a clear 4xx problem+json, nothing written, no stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.engine import Database
from tests.conftest import TABLE_NAMES, count, make_container, wait_for_idle_pool
from tests.helpers import AUTH, assert_problem, create_app, served

M6 = {"name": "M6", "material": "brass", "diameter_mm": 6}
SMALL_LIMIT = 2048


async def assert_nothing_written(admin_engine: AsyncEngine) -> None:
    for table in TABLE_NAMES:
        assert await count(admin_engine, table) == 0, table


async def a_grommet(admin_engine: AsyncEngine, client: httpx.AsyncClient) -> int:
    response = await client.post("/grommets", json=M6)
    assert response.status_code == 201
    grommet_id: int = response.json()["id"]
    assert await count(admin_engine, "grommets") == 1
    return grommet_id


# -- bodies that cannot be read ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"{", b'{"name": "M6",}', b"", b"nope", b'{"name": "\xff"}', b"NaN", b"[1, 2"]
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, raw: bytes
) -> None:
    for path in ("/grommets", "/widgets"):
        response = await client.post(
            path, content=raw, headers={"content-type": "application/json"}
        )
        body = assert_problem(response, 400)
        assert body["type"] == "urn:carpool:problem:bad-request"
        assert body["detail"].startswith("The body is not valid JSON")
    await assert_nothing_written(admin_engine)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    grommet = await client.post("/grommets", content=b'{"name": "M6"}', headers=headers)
    body = assert_problem(grommet, 415)
    assert body == {
        "type": "urn:carpool:problem:unsupported-media-type",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": "Send the body as application/json.",
    }
    widget = await client.post("/widgets", content=b'{"name": "w"}', headers=headers)
    assert_problem(widget, 415)
    await assert_nothing_written(admin_engine)


async def test_json_with_charset_or_a_json_suffix_is_accepted(client: httpx.AsyncClient) -> None:
    for i, content_type in enumerate(
        ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
    ):
        body = orjson.dumps({**M6, "name": f"M{i}"})
        response = await client.post(
            "/grommets", content=body, headers={"content-type": content_type}
        )
        assert response.status_code == 201, content_type


# -- bodies over the size limit ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def small_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """A second app whose REQUEST_MAX_BYTES is small, and its engine."""
    container = make_container(database_url, request_max_bytes=SMALL_LIMIT)
    application = create_app(container)
    async with served(application, base_url="http://small.test", headers=AUTH) as http:
        engine: Database = container.database()
        yield http, engine


def oversized() -> bytes:
    padding = "x" * SMALL_LIMIT
    return f'{{"name": "M6", "material": "{padding}", "diameter_mm": 6}}'.encode()


async def test_body_over_the_limit_with_content_length_is_413(
    small_client: tuple[httpx.AsyncClient, Database], admin_engine: AsyncEngine
) -> None:
    http, engine = small_client
    raw = oversized()
    response = await http.post(
        "/grommets", content=raw, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 413)
    assert body["detail"] == f"The request body exceeds the limit of {SMALL_LIMIT} bytes."
    await assert_nothing_written(admin_engine)
    assert await wait_for_idle_pool(engine) == 0


async def test_body_over_the_limit_without_content_length_is_413(
    small_client: tuple[httpx.AsyncClient, Database], admin_engine: AsyncEngine
) -> None:
    http, engine = small_client
    raw = oversized()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 512):
            yield raw[start : start + 512]

    response = await http.post(
        "/grommets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    body = assert_problem(response, 413)
    assert body["detail"] == f"The request body exceeds the limit of {SMALL_LIMIT} bytes."
    await assert_nothing_written(admin_engine)
    assert await wait_for_idle_pool(engine) == 0


async def test_body_just_under_the_limit_is_accepted(
    small_client: tuple[httpx.AsyncClient, Database], admin_engine: AsyncEngine
) -> None:
    http, _ = small_client
    raw = b'{"name": "M6", "material": "brass", "diameter_mm": 6}'
    raw = raw[:-1] + b" " * (SMALL_LIMIT - len(raw)) + b"}"
    assert len(raw) == SMALL_LIMIT
    response = await http.post(
        "/grommets", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert await count(admin_engine, "grommets") == 1


# -- bodies that are JSON but not acceptable --------------------------------------------------

GROMMET_CASES: list[tuple[Any, str, str]] = [
    # (body, pointer of the first error, a word its detail must contain)
    ({**M6, "name": 5}, "/name", "string"),
    ({**M6, "diameter_mm": "6"}, "/diameter_mm", "number"),
    ({**M6, "diameter_mm": True}, "/diameter_mm", "number"),
    ({**M6, "diameter_mm": 0}, "/diameter_mm", "greater than 0"),
    ({**M6, "diameter_mm": -1.5}, "/diameter_mm", "greater than 0"),
    ({**M6, "diameter_mm": 10**30}, "/diameter_mm", "less than or equal"),
    ({**M6, "diameter_mm": 2**40}, "/diameter_mm", "less than or equal"),
    ({**M6, "name": "x" * 201}, "/name", "at most 200"),
    ({**M6, "name": ""}, "/name", "at least 1"),
    ({**M6, "material": "x" * 101}, "/material", "at most 100"),
    ({**M6, "name": "M6\x00"}, "/name", "NUL"),
    ({**M6, "material": "\x00"}, "/material", "NUL"),
    ({**M6, "colour": "red"}, "/colour", "Extra inputs"),
    ({"name": "M6", "material": "brass"}, "/diameter_mm", "required"),
    ([M6], "", "JSON object"),
    ("M6", "", "JSON object"),
    (6, "", "JSON object"),
    (True, "", "JSON object"),
]


@pytest.mark.parametrize(("payload", "pointer", "word"), GROMMET_CASES)
async def test_unacceptable_grommet_is_422_pointing_at_the_field(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, payload: Any, pointer: str, word: str
) -> None:
    body = assert_problem(await client.post("/grommets", json=payload), 422)
    assert body["type"] == "urn:carpool:problem:validation"
    assert body["errors"][0]["pointer"] == pointer
    assert word in body["errors"][0]["detail"]
    await assert_nothing_written(admin_engine)


async def test_json_null_body_is_422(client: httpx.AsyncClient, admin_engine: AsyncEngine) -> None:
    response = await client.post(
        "/grommets", content=b"null", headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [{"detail": "Input should be a JSON object", "pointer": ""}]
    await assert_nothing_written(admin_engine)


async def test_unacceptable_grommet_patch_changes_nothing(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    grommet_id = await a_grommet(admin_engine, client)
    before = (await client.get(f"/grommets/{grommet_id}")).json()
    for payload, pointer, _word in GROMMET_CASES:
        if pointer == "/diameter_mm" and payload.get("diameter_mm") is None:
            continue  # a missing field is fine in a PATCH
        response = await client.patch(f"/grommets/{grommet_id}", json=payload)
        assert assert_problem(response, 422)["errors"][0]["pointer"] == pointer, payload
    assert (await client.get(f"/grommets/{grommet_id}")).json() == before


def widget_cases(grommet_id: int) -> list[tuple[Any, str]]:
    part = {"grommet_id": grommet_id, "quantity": 1}
    return [
        ({"name": "w", "parts": [{**part, "quantity": 2**40}]}, "/parts/0/quantity"),
        ({"name": "w", "parts": [{**part, "quantity": 2**31}]}, "/parts/0/quantity"),
        ({"name": "w", "parts": [{**part, "quantity": 10**30}]}, "/parts/0/quantity"),
        ({"name": "w", "parts": [{**part, "quantity": 4.0}]}, "/parts/0/quantity"),
        ({"name": "w", "parts": [{**part, "quantity": "4"}]}, "/parts/0/quantity"),
        ({"name": "w", "parts": [{**part, "quantity": -1}]}, "/parts/0/quantity"),
        ({"name": "w", "parts": [{**part, "grommet_id": 2**63}]}, "/parts/0/grommet_id"),
        ({"name": "w", "parts": [{**part, "grommet_id": 10**30}]}, "/parts/0/grommet_id"),
        ({"name": "w", "parts": [{**part, "grommet_id": True}]}, "/parts/0/grommet_id"),
        ({"name": "w", "parts": [{**part, "extra": 1}]}, "/parts/0/extra"),
        ({"name": "w", "parts": {"0": part}}, "/parts"),
        ({"name": "w", "parts": [5]}, "/parts/0"),
        ({"name": "w", "parts": [part] * 2}, "/parts"),
        ({"name": "w" * 201}, "/name"),
        ({"name": "w\x00"}, "/name"),
        ({"name": ["w"]}, "/name"),
        ({"name": "w", "colour": "red"}, "/colour"),
        ([{"name": "w"}], ""),
    ]


async def test_unacceptable_widget_is_422_pointing_at_the_field(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    grommet_id = await a_grommet(admin_engine, client)
    for payload, pointer in widget_cases(grommet_id):
        body = assert_problem(await client.post("/widgets", json=payload), 422)
        assert body["errors"][0]["pointer"] == pointer, payload
    assert await count(admin_engine, "widgets") == 0
    assert await count(admin_engine, "widget_parts") == 0


async def test_diameter_beyond_a_double_is_refused_as_unreadable(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    raw = b'{"name": "M6", "material": "brass", "diameter_mm": 1e400}'
    response = await client.post(
        "/grommets", content=raw, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert "infinity" in body["detail"]
    await assert_nothing_written(admin_engine)


async def test_huge_ids_in_paths_are_404_not_500(client: httpx.AsyncClient) -> None:
    for path in ("/grommets/" + "9" * 5000, "/widgets/" + "9" * 5000, "/widgets/" + "9" * 30):
        assert_problem(await client.get(path), 404)
        assert_problem(await client.delete(path), 404)


# -- routing ----------------------------------------------------------------------------------


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for path in ("/nope", "/grommets/abc", "/widgets/1/parts", "/grommets/1.5"):
        assert_problem(await client.get(path), 404)
        assert_problem(await client.post(path, json={}), 404)


async def test_wrong_method_is_a_405_problem_with_allow(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    cases = [
        ("PUT", "/grommets", {"GET", "HEAD", "POST"}),
        ("DELETE", "/widgets", {"GET", "HEAD", "POST"}),
        ("PUT", "/widgets/1", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("POST", "/grommets/7", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("POST", "/health", {"GET", "HEAD"}),
    ]
    for method, path, allowed in cases:
        response = await client.request(method, path, json=M6)
        body = assert_problem(response, 405)
        assert body["detail"] == f"Method {method} not allowed for URL {path}"
        assert set(response.headers["allow"].split(", ")) == allowed, (method, path)
    await assert_nothing_written(admin_engine)


async def test_a_body_of_many_bad_fields_answers_a_bounded_list_of_errors(
    client: httpx.AsyncClient,
) -> None:
    body = {**M6, **{f"stray{i}": i for i in range(2000)}}
    response = await client.post("/grommets", json=body)
    assert response.status_code == 422
    assert len(response.json()["errors"]) == 50
    assert len(response.content) < len(orjson.dumps(body))


async def test_batch_accepts_json_media_types_as_the_single_routes_do(
    client: httpx.AsyncClient,
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.carpool+json"):
        response = await client.post(
            "/batch", content=b'{"load": ["/grommets"]}', headers={"content-type": content_type}
        )
        assert response.status_code == 200, content_type
