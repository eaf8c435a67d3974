"""Property: a batch item answers the same status and body bytes as the single request."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import seed_catalog

# Fields a write legitimately changes between two runs on the same state: a fresh id from
# the sequence (rolled-back batches consume ids too) and the transaction's clock.
_VOLATILE = re.compile(rb'"(id|created_at|updated_at)":("[^"]*"|\d+)')

ids = st.one_of(st.integers(min_value=1, max_value=6), st.sampled_from([0, 999, 2**63, 10**30]))
names = st.one_of(st.sampled_from(["A", "B", "hinge", "new"]), st.text(max_size=210))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
diameters = st.one_of(st.floats(min_value=-1, max_value=200_000, allow_nan=False), json_scalars)
# Ids inside JSON bodies stay within what a JSON encoder writes (64 bits).
body_ids = st.one_of(st.integers(min_value=1, max_value=6), st.sampled_from([0, 999, 2**63 - 1]))
quantities = st.one_of(st.integers(min_value=-3, max_value=2**31 + 3), json_scalars)
parts = st.lists(
    st.fixed_dictionaries({"grommet_id": body_ids, "quantity": quantities}), max_size=3
)


def _maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of `fields`, sometimes with a stray one."""
    return st.fixed_dictionaries({}, optional={**fields, "stray": json_scalars})


grommet_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "name": names,
            "material": st.sampled_from(["brass", "", "x" * 101]),
            "diameter_mm": diameters,
        }
    ),
    _maybe({"name": names, "material": st.text(max_size=3), "diameter_mm": diameters}),
    json_scalars,
)
widget_bodies = st.one_of(
    st.fixed_dictionaries({"name": names, "parts": parts}),
    _maybe({"name": names, "parts": st.one_of(parts, json_scalars)}),
    json_scalars,
)
queries = st.sampled_from(
    [
        "",
        "?limit=2",
        "?limit=0",
        "?limit=abc",
        "?cursor=YWZ0ZXI6Mg",
        "?cursor=zz",
        "?include=grommets",
        "?include=nope",
    ]
)

requests = st.one_of(
    st.tuples(st.just("GET"), st.sampled_from(["/grommets", "/widgets"]), queries, st.none()),
    st.tuples(st.just("GET"), st.builds("/grommets/{}".format, ids), st.just(""), st.none()),
    st.tuples(
        st.just("GET"),
        st.builds("/widgets/{}".format, ids),
        st.sampled_from(["", "?include=grommets"]),
        st.none(),
    ),
    st.tuples(st.just("POST"), st.just("/grommets"), st.just(""), grommet_bodies),
    st.tuples(st.just("POST"), st.just("/widgets"), st.just(""), widget_bodies),
    st.tuples(st.just("PATCH"), st.builds("/grommets/{}".format, ids), st.just(""), grommet_bodies),
    st.tuples(st.just("PATCH"), st.builds("/widgets/{}".format, ids), st.just(""), widget_bodies),
    st.tuples(
        st.just("DELETE"),
        st.sampled_from(["/grommets/", "/widgets/"]).map(str),
        st.just(""),
        st.none(),
    ).map(lambda r: (r[0], r[1] + "3", r[2], r[3])),
    st.tuples(
        st.sampled_from(["PUT", "GET", "DELETE"]),
        st.sampled_from(["/nope", "/grommets", "/widgets/x"]),
        st.just(""),
        st.none(),
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests)
async def test_batch_item_answers_exactly_what_the_single_request_answers(
    client: httpx.AsyncClient, request: tuple[str, str, str, Any]
) -> None:
    method, path, query, body = request
    if not (await client.get("/grommets/1")).status_code == 200:
        await seed_catalog(client, widgets=(("hinge", 1), ("bracket", 2)))
    item: dict[str, Any] = {"method": method, "path": path + query}
    if body is not None or method in ("POST", "PATCH"):
        item["body"] = body
    # Atomic and failing after the item: the batch changes nothing, so the single request
    # below meets the very same database state.
    envelope = {"requests": [item, {"path": "/nope"}]}
    batch = await client.post("/batch", json=envelope)
    assert batch.status_code == 200
    answer = batch.json()
    assert answer["committed"] is False
    batch_item = answer["responses"][0]

    content = orjson.dumps(body) if "body" in item else None
    headers = {"content-type": "application/json"} if content is not None else {}
    single = await client.request(method, path + query, content=content, headers=headers)

    assert batch_item["status"] == single.status_code
    if not single.content:
        assert batch_item["body"] is None
        return
    spliced = orjson.dumps(batch_item["body"])
    expected = orjson.dumps(orjson.loads(single.content))
    if single.status_code < 300 and method in ("POST", "PATCH"):
        spliced, expected = _VOLATILE.sub(b"", spliced), _VOLATILE.sub(b"", expected)
    else:
        # Reads and refusals are deterministic: the raw bytes appear verbatim in the answer.
        assert single.content in batch.content
    assert spliced == expected
