"""Suppliers, and the supplier a grommet names: singly, in batches, over the socket, live."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.catalog.test_coalescing import queries_of
from tests.helpers import assert_problem, created
from tests.websocket_support import AsgiSocket

ACME = {"name": "Acme", "country": "DE"}
BODY_KEYS = ["id", "name", "country", "created_at", "updated_at"]


async def supplier(client: httpx.AsyncClient, name: str, country: str = "DE") -> dict[str, Any]:
    return await created(client, "/suppliers", {"name": name, "country": country})


async def grommet(
    client: httpx.AsyncClient, name: str, supplier_id: int | None = None
) -> dict[str, Any]:
    body = {"name": name, "material": "brass", "diameter_mm": 6, "supplier_id": supplier_id}
    return await created(client, "/grommets", body)


# -- the resource ------------------------------------------------------------------------------


async def test_a_supplier_is_created_read_listed_patched_and_deleted(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/suppliers", json=ACME)
    assert created.status_code == 201
    body = created.json()
    assert list(body) == BODY_KEYS
    assert body["name"] == "Acme" and body["country"] == "DE"
    assert created.headers["location"] == f"/suppliers/{body['id']}"
    assert created.headers["etag"].startswith('"')

    read = await client.get(f"/suppliers/{body['id']}")
    assert read.status_code == 200 and read.content == created.content
    page = await client.get("/suppliers")
    assert page.json() == {"items": [body], "next": None}

    patched = await client.patch(f"/suppliers/{body['id']}", json={"country": "FR"})
    assert patched.status_code == 200
    assert patched.json()["country"] == "FR" and patched.json()["name"] == "Acme"
    assert patched.json()["updated_at"] >= body["updated_at"]

    assert (await client.delete(f"/suppliers/{body['id']}")).status_code == 204
    missing = await client.get(f"/suppliers/{body['id']}")
    assert_problem(missing, 404)
    assert missing.json()["detail"] == f"supplier {body['id']} does not exist"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "", "country": "DE"}, "/name"),
        ({"name": "x" * 201, "country": "DE"}, "/name"),
        ({"name": "   ", "country": "DE"}, "/name"),
        ({"name": "Acme", "country": "de"}, "/country"),
        ({"name": "Acme", "country": "ZZ"}, "/country"),
        ({"name": "Acme", "country": "DEU"}, "/country"),
        ({"name": "Acme", "country": 49}, "/country"),
        ({"name": "Acme"}, "/country"),
        ({"name": "Acme", "country": "DE", "city": "Bonn"}, "/city"),
    ],
)
async def test_invalid_suppliers_are_422_pointing_at_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], pointer: str
) -> None:
    response = await client.post("/suppliers", json=body)
    assert_problem(response, 422)
    assert pointer in [error["pointer"] for error in response.json()["errors"]]


async def test_names_are_unique_and_a_patch_takes_a_known_country_only(
    client: httpx.AsyncClient,
) -> None:
    made = await supplier(client, "Acme")
    taken = await client.post("/suppliers", json={"name": "Acme", "country": "FR"})
    assert_problem(taken, 409)
    assert taken.json()["detail"] == 'a supplier named "Acme" already exists'
    other = await supplier(client, "Bolt")
    assert_problem(await client.patch(f"/suppliers/{other['id']}", json={"name": "Acme"}), 409)
    for refused in ({"country": "XX"}, {"country": None}, {}):
        assert_problem(await client.patch(f"/suppliers/{made['id']}", json=refused), 422)
    assert (await client.get(f"/suppliers/{made['id']}")).json() == made


# -- grommets name their supplier ----------------------------------------------------------------


async def test_a_grommet_names_its_supplier_or_none_and_an_unknown_one_is_422(
    client: httpx.AsyncClient,
) -> None:
    acme = await supplier(client, "Acme")
    plain = await grommet(client, "M4")
    assert plain["supplier_id"] is None
    assert list(plain) == [
        "id", "name", "material", "diameter_mm", "supplier_id", "created_at", "updated_at"
    ]  # fmt: skip
    named = await grommet(client, "M6", acme["id"])
    assert named["supplier_id"] == acme["id"]

    unknown = await client.post(
        "/grommets", json={"name": "M8", "material": "brass", "diameter_mm": 8, "supplier_id": 999}
    )
    assert_problem(unknown, 422)
    assert unknown.json()["errors"] == [
        {"detail": "supplier 999 does not exist", "pointer": "/supplier_id"}
    ]
    patched = await client.patch(f"/grommets/{named['id']}", json={"supplier_id": 999})
    assert_problem(patched, 422)
    cleared = await client.patch(f"/grommets/{named['id']}", json={"supplier_id": None})
    assert cleared.status_code == 200 and cleared.json()["supplier_id"] is None
    linked = await client.patch(f"/grommets/{plain['id']}", json={"supplier_id": acme["id"]})
    assert linked.json()["supplier_id"] == acme["id"]


async def test_deleting_a_supplier_a_grommet_names_is_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    acme = await supplier(client, "Acme")
    named = await grommet(client, "M6", acme["id"])
    refused = await client.delete(f"/suppliers/{acme['id']}")
    assert_problem(refused, 409)
    assert refused.json()["detail"] == (
        f"supplier {acme['id']} is named by a grommet; clear the grommet's supplier_id first"
    )
    assert (await client.get(f"/suppliers/{acme['id']}")).status_code == 200
    await client.patch(f"/grommets/{named['id']}", json={"supplier_id": None})
    assert (await client.delete(f"/suppliers/{acme['id']}")).status_code == 204


async def test_include_supplier_embeds_it_in_place_of_its_id_singly_and_in_pages(
    client: httpx.AsyncClient,
) -> None:
    acme = await supplier(client, "Acme")
    named = await grommet(client, "M6", acme["id"])
    plain = await grommet(client, "M4")
    one = await client.get(f"/grommets/{named['id']}?include=supplier")
    expected = {**named, "supplier": acme}
    del expected["supplier_id"]
    assert one.json() == expected
    assert list(one.json()) == [
        "id", "name", "material", "diameter_mm", "supplier", "created_at", "updated_at"
    ]  # fmt: skip
    page = (await client.get("/grommets?include=supplier")).json()
    assert [item.get("supplier") for item in page["items"]] == [acme, None]
    assert "supplier_id" not in page["items"][1] and page["items"][1]["id"] == plain["id"]
    assert (await client.get(f"/grommets/{named['id']}")).json() == named
    assert_problem(await client.get("/grommets?include=suppliers"), 422)


async def test_a_page_with_suppliers_costs_the_same_queries_for_1_and_30_grommets(
    client: httpx.AsyncClient,
) -> None:
    makers = [await supplier(client, f"s{i}") for i in range(5)]
    await grommet(client, "g0", makers[0]["id"])
    small = await client.get("/grommets?include=supplier")
    for i in range(1, 30):
        await grommet(client, f"g{i}", makers[i % 5]["id"])
    large = await client.get("/grommets?include=supplier")
    assert len(large.json()["items"]) == 30
    assert queries_of(small) == queries_of(large) == 2  # the page, its suppliers


# -- batches and frames --------------------------------------------------------------------------


async def test_a_batch_of_20_supplier_reads_is_one_query_with_the_singles_bytes(
    client: httpx.AsyncClient,
) -> None:
    made = [await supplier(client, f"s{i}") for i in range(20)]
    paths = [f"/suppliers/{s['id']}" for s in made]
    response = await client.post("/batch", json={"load": paths})
    assert response.status_code == 200
    assert queries_of(response) == 1
    answer = orjson.loads(response.content)
    singles = [await client.get(path) for path in paths]
    for item, single in zip(answer["responses"], singles, strict=True):
        assert item["status"] == 200
        assert orjson.dumps(item["body"]) == single.content
        assert item["headers"]["etag"] == single.headers["etag"]


async def test_grommets_with_their_suppliers_in_a_batch_load_each_supplier_once(
    client: httpx.AsyncClient,
) -> None:
    acme, bolt = await supplier(client, "Acme"), await supplier(client, "Bolt")
    made = [await grommet(client, f"g{i}", (acme, bolt)[i % 2]["id"]) for i in range(10)]
    paths = [f"/grommets/{g['id']}?include=supplier" for g in made]
    response = await client.post("/batch", json={"load": paths})
    assert queries_of(response) == 2  # the grommets, then their two suppliers
    bodies = [item["body"]["supplier"]["name"] for item in response.json()["responses"]]
    assert bodies == ["Acme", "Bolt"] * 5


async def test_a_batch_creates_a_supplier_and_a_grommet_naming_it_by_reference(
    client: httpx.AsyncClient,
) -> None:
    envelope = {
        "requests": [
            {"id": "s", "method": "POST", "path": "/suppliers", "body": ACME},
            {
                "id": "g",
                "method": "POST",
                "path": "/grommets",
                "body": {
                    "name": "M6",
                    "material": "brass",
                    "diameter_mm": 6,
                    "supplier_id": "{{s/body/id}}",
                },
            },
            {"id": "r", "path": "/grommets/{{g/body/id}}?include=supplier"},
        ]
    }
    answer = (await client.post("/batch", json=envelope)).json()
    assert answer["committed"] is True
    made, read = answer["responses"][0]["body"], answer["responses"][2]["body"]
    assert read["supplier"] == made


async def test_a_stale_if_match_is_412_and_an_idempotency_key_replays(
    client: httpx.AsyncClient,
) -> None:
    made = await client.post("/suppliers", json=ACME)
    path = f"/suppliers/{made.json()['id']}"
    etag = (await client.get(path)).headers["etag"]
    assert etag == made.headers["etag"]
    changed = await client.patch(path, json={"country": "FR"}, headers={"if-match": etag})
    assert changed.status_code == 200
    stale = await client.patch(path, json={"country": "IT"}, headers={"if-match": etag})
    assert_problem(stale, 412)
    assert_problem(await client.delete(path, headers={"if-match": etag}), 412)
    assert (await client.get(path)).json()["country"] == "FR"

    key = {"idempotency-key": "supplier-bolt"}
    first = await client.post("/suppliers", json={"name": "Bolt", "country": "NL"}, headers=key)
    again = await client.post("/suppliers", json={"name": "Bolt", "country": "NL"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


async def test_supplier_frames_over_the_socket_answer_the_singles_bytes(
    socket: AsgiSocket, client: httpx.AsyncClient
) -> None:
    socket.send({"id": "c", "method": "POST", "path": "/suppliers", "body": ACME})
    created = await socket.answer()
    assert created["status"] == 201 and created["headers"]["location"].startswith("/suppliers/")
    path = created["headers"]["location"]
    socket.send({"id": "r", "path": path})
    read = await socket.answer()
    assert orjson.dumps(read["body"]) == (await client.get(path)).content
    socket.send({"id": "bad", "method": "POST", "path": "/suppliers", "body": {"name": "x"}})
    assert (await socket.answer())["status"] == 422


async def test_a_subscribed_grommet_with_its_supplier_is_pushed_when_the_supplier_changes(
    socket: AsgiSocket, client: httpx.AsyncClient
) -> None:
    acme = await supplier(client, "Acme")
    other = await supplier(client, "Other")
    named = await grommet(client, "M6", acme["id"])
    path = f"/grommets/{named['id']}?include=supplier"
    socket.send({"type": "subscribe", "id": "g", "path": path})
    first = await socket.answer()
    assert first["type"] == "update" and first["body"]["supplier"]["country"] == "DE"

    await client.patch(f"/suppliers/{other['id']}", json={"country": "NL"})  # not its supplier
    await client.patch(f"/suppliers/{acme['id']}", json={"country": "FR"})
    pushed = await socket.answer()
    assert pushed["id"] == "g" and pushed["body"]["supplier"]["country"] == "FR"
    assert orjson.dumps(pushed["body"]) == (await client.get(path)).content

    socket.send({"type": "subscribe", "id": "page", "path": "/suppliers"})
    assert (await socket.answer())["id"] == "page"
    await supplier(client, "Newcomer")
    listed = await socket.answer()
    assert listed["id"] == "page" and len(listed["body"]["items"]) == 3
