"""`GET /metrics`: Prometheus text with calls by route, method, status and transport."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.websocket_support import AsgiSocket

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def calls(samples: Samples, route: str, transport: str, status: str) -> float:
    wanted = {"route": route, "transport": transport, "status": status, "method": "GET"}
    return sum(
        value
        for labels, value in samples.get("carpool_calls_total", {}).items()
        if wanted.items() <= dict(labels).items()
    )


async def test_calls_are_counted_by_route_template_status_and_transport(
    app: Any, client: httpx.AsyncClient
) -> None:
    before = await scrape(client)
    await client.get("/grommets/123")
    await client.post("/batch", json={"load": ["/grommets/123", "/grommets/124"]})
    socket = await AsgiSocket(app).open()
    try:
        socket.send({"id": "1", "path": "/grommets/125"})
        assert (await socket.answer())["status"] == 404
    finally:
        socket.leave()
        await socket.ended()
    after = await scrape(client)
    route = "/grommets/{grommet_id}"
    for transport, n in (("single", 1), ("batch_item", 2), ("frame", 1)):
        grown = calls(after, route, transport, "404") - calls(before, route, transport, "404")
        assert grown == n, transport


async def test_units_of_work_pool_and_sockets_are_reported(client: httpx.AsyncClient) -> None:
    await client.get("/grommets")
    samples = await scrape(client)
    assert sum(samples["carpool_unit_of_work_seconds_count"].values()) >= 1
    assert sum(samples["carpool_unit_of_work_queries_count"].values()) >= 1
    for gauge in (
        "carpool_db_pool_size",
        "carpool_db_pool_in_use",
        "carpool_db_pool_waiting",
        "carpool_websockets_open",
        "carpool_frames_in_flight",
    ):
        assert gauge in samples, gauge
    assert next(iter(samples["carpool_db_pool_size"].values())) >= 1


async def test_metrics_is_public_and_not_composable(client: httpx.AsyncClient) -> None:
    batch = await client.post("/batch", json={"load": ["/metrics"]})
    assert batch.json()["responses"][0]["status"] == 400


def test_units_added_up_land_in_the_buckets_observe_would_choose() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    from carpool.observability import metrics

    registry = CollectorRegistry()
    bounds = metrics.UNIT_QUERIES._upper_bounds
    direct = Histogram("direct", "d", buckets=bounds[:-1], registry=registry)
    summed = Histogram("summed", "s", buckets=bounds[:-1], registry=registry)
    amounts = [0, 1, 1, 2, 2.5, 3, 4, 50, 499, 500, 501, 10_000]
    for amount in amounts:
        direct.observe(amount)
        metrics._observe(summed, amount)
    metrics.flush()

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name.replace(name, ""), s.labels, s.value)
            for family in registry.collect()
            if family.name == name
            for s in family.samples
            if not s.name.endswith("_created")
        ]

    assert samples("summed") == samples("direct")


async def test_with_metrics_off_nothing_is_counted(database_url: str) -> None:
    from carpool.observability import metrics
    from tests.conftest import make_container
    from tests.helpers import AUTH, create_app, served

    app = create_app(make_container(database_url, metrics=False))
    try:
        async with served(app, headers=AUTH) as http:
            before = await scrape(http)
            await http.get("/grommets/123")
            await http.post("/batch", json={"load": ["/grommets/123"]})
            after = await scrape(http)
    finally:
        metrics.configure(enabled=True)  # the process's: as the other apps run
    for name in ("carpool_calls_total", "carpool_unit_of_work_queries_count"):
        assert after.get(name) == before.get(name)
