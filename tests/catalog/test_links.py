"""Pages carry `Link: <...>; rel="next"` beside the body's `next`; 201 keeps `Location`."""

from __future__ import annotations

import re

import httpx

_NEXT = re.compile(r'<([^>]*)>; rel="next"')


async def test_each_page_links_to_the_next_until_the_last(client: httpx.AsyncClient) -> None:
    for i in range(5):
        body = {"name": f"g{i}", "material": "brass", "diameter_mm": 6}
        created = await client.post("/grommets", json=body)
        assert created.headers["location"] == f"/grommets/{created.json()['id']}"
    seen: list[int] = []
    url: str | None = "/grommets?limit=2"
    while url is not None:
        page = await client.get(url)
        seen += [item["id"] for item in page.json()["items"]]
        link = page.headers.get("link")
        if page.json()["next"] is None:
            assert link is None
            url = None
            continue
        match = _NEXT.fullmatch(link or "")
        assert match is not None, link
        url = match.group(1)
        assert url == f"/grommets?limit=2&cursor={page.json()['next']}"
    assert seen == [1, 2, 3, 4, 5]


async def test_the_link_keeps_the_query_and_is_an_item_header_in_batches(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/grommets", json={"name": "g", "material": "brass", "diameter_mm": 6})
    for name in ("w1", "w2"):
        body = {"name": name, "parts": [{"grommet_id": 1, "quantity": 1}]}
        await client.post("/widgets", json=body)
    single = await client.get("/widgets?include=grommets&limit=1")
    cursor = single.json()["next"]
    assert single.headers["link"] == (
        f'</widgets?include=grommets&limit=1&cursor={cursor}>; rel="next"'
    )
    answer = await client.post("/batch", json={"load": ["/widgets?include=grommets&limit=1"]})
    assert answer.json()["responses"][0]["headers"]["link"] == single.headers["link"]
