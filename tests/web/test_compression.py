"""Compression of answers over 1 KiB, as Accept-Encoding allows; batch items stay identical."""

from __future__ import annotations

import gzip

import httpx
import pytest

from carpool.web.compression import negotiate


async def _wire(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> bytes:
    """The answer's bytes as they travelled (not decoded)."""
    async with client.stream(method, path, **kw) as answer:  # type: ignore[arg-type]
        return b"".join([part async for part in answer.aiter_raw()])


async def _many_grommets(client: httpx.AsyncClient, n: int = 20) -> None:
    for i in range(n):
        body = {"name": f"grommet {i:03}", "material": "brass", "diameter_mm": 6}
        assert (await client.post("/grommets", json=body)).status_code == 201


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),  # a tie: br, the smaller
        ("br;q=0.5, gzip", "gzip"),  # the client prefers gzip
        ("br;q=0, gzip;q=0", None),
        ("*", "br"),
        ("*;q=0.1, gzip;q=0.9", "gzip"),
        ("GZIP;Q=1", "gzip"),
        ("gzip;q=nonsense", None),
    ],
)
def test_negotiation_follows_the_clients_preferences(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


async def test_a_large_answer_is_gzipped_with_vary_and_a_coded_etag(
    client: httpx.AsyncClient,
) -> None:
    await _many_grommets(client)
    plain = await client.get("/grommets", headers={"Accept-Encoding": "identity"})
    assert len(plain.content) > 1024 and "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    zipped = await client.get("/grommets", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content  # httpx decodes it
    wire = await _wire(client, "GET", "/grommets", headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(wire) == plain.content
    assert len(wire) < len(plain.content) / 3
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    # A conditional request with the coded ETag still matches: 304, not compressed.
    again = await client.get(
        "/grommets", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}
    )
    assert again.status_code == 304 and "content-encoding" not in again.headers


async def test_brotli_when_the_client_prefers_it(client: httpx.AsyncClient) -> None:
    await _many_grommets(client)
    plain = await client.get("/grommets", headers={"Accept-Encoding": "identity"})
    raw = await client.get("/grommets", headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
    assert raw.headers["content-encoding"] == "br"
    assert raw.content == plain.content  # httpx decodes br too (brotli installed)


async def test_small_answers_are_not_compressed(client: httpx.AsyncClient) -> None:
    await _many_grommets(client, 1)
    small = await client.get("/grommets/1", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers and "vary" not in small.headers


async def test_a_batch_is_compressed_as_a_whole_and_its_items_stay_identical(
    client: httpx.AsyncClient,
) -> None:
    await _many_grommets(client)
    paths = [f"/grommets/{n}" for n in range(1, 21)]
    headers = {"Accept-Encoding": "gzip"}
    wire = await _wire(client, "POST", "/batch", json={"load": paths}, headers=headers)
    body = gzip.decompress(wire)
    assert body == (await client.post("/batch", json={"load": paths})).content
    for path in paths:
        single = await client.get(path, headers=headers)
        assert single.content in body  # each item's body, byte for byte, before compression
