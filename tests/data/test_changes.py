"""Change notifications: what the triggers announce, only at COMMIT, and the LISTEN connection's
recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.data.changes import Change, ChangeListener, connect_kwargs, parse_change
from carpool.data.footprint import Footprint, read_keys, read_table, tracking


class Heard:
    """What a listener handed over: bursts of changes, and resumptions."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[Change] = asyncio.Queue()
        self.resumed = asyncio.Event()

    def on_changes(self, changes: list[Change]) -> None:
        for change in changes:
            self.changes.put_nowait(change)

    def on_resume(self) -> None:
        self.resumed.set()

    async def next(self, timeout: float = 10.0) -> Change:
        return await asyncio.wait_for(self.changes.get(), timeout)

    def drained(self) -> list[Change]:
        out = []
        while not self.changes.empty():
            out.append(self.changes.get_nowait())
        return out


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[tuple[ChangeListener, Heard]]:
    listener = ChangeListener(connect_kwargs(database_url), backoff_s=(0.02, 0.2))
    heard = Heard()
    listener.consume(heard.on_changes, heard.on_resume)
    await listener.start()
    yield listener, heard
    await listener.close()


async def test_a_committed_write_announces_its_table_and_ids_and_a_rolled_back_one_nothing(
    heard: tuple[ChangeListener, Heard], admin_engine: AsyncEngine
) -> None:
    _, seen = heard
    async with admin_engine.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO grommets (name, material, diameter_mm) VALUES"
                " ('a', 'x', 1), ('b', 'x', 1)"
            )
        )
        await conn.rollback()
    async with admin_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO grommets (name, material, diameter_mm) VALUES"
                " ('c', 'x', 1), ('d', 'x', 1)"
            )
        )
        ids = frozenset((await conn.execute(text("SELECT id FROM grommets"))).scalars())
        assert seen.drained() == [], "nothing is delivered before COMMIT"
    assert await seen.next() == Change("grommets", ids)
    await asyncio.sleep(0.2)
    assert seen.drained() == []


async def test_parts_announce_their_widget_and_a_cascade_is_announced_too(
    heard: tuple[ChangeListener, Heard], admin_engine: AsyncEngine
) -> None:
    _, seen = heard
    async with admin_engine.begin() as conn:
        g = (
            await conn.execute(
                text(
                    "INSERT INTO grommets (name, material, diameter_mm)"
                    " VALUES ('g', 'x', 1) RETURNING id"
                )
            )
        ).scalar_one()
        w = (
            await conn.execute(text("INSERT INTO widgets (name) VALUES ('w') RETURNING id"))
        ).scalar_one()
        await conn.execute(text(f"INSERT INTO widget_parts VALUES ({w}, {g}, 3)"))
    assert {await seen.next() for _ in range(3)} == {
        Change("grommets", frozenset({g})),
        Change("widgets", frozenset({w})),
        Change("widget_parts", frozenset({w})),
    }
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"DELETE FROM widgets WHERE id = {w}"))
    assert {await seen.next() for _ in range(2)} == {
        Change("widgets", frozenset({w})),
        Change("widget_parts", frozenset({w})),
    }


async def test_a_truncate_announces_any_row(
    heard: tuple[ChangeListener, Heard], admin_engine: AsyncEngine
) -> None:
    _, seen = heard
    async with admin_engine.begin() as conn:
        await conn.execute(text("TRUNCATE widget_parts"))
    assert await seen.next() == Change("widget_parts", None)


async def test_the_listener_reconnects_after_its_connection_is_cut_and_says_so(
    heard: tuple[ChangeListener, Heard], admin_engine: AsyncEngine
) -> None:
    listener, seen = heard
    async with admin_engine.begin() as conn:
        pid = listener.backend_pid
        cut = await conn.execute(text(f"SELECT pg_terminate_backend({pid})"))
        assert cut.scalar_one() is True
    await asyncio.wait_for(seen.resumed.wait(), 15)
    assert listener.listening and listener.reconnections == 1
    async with admin_engine.begin() as conn:
        await conn.execute(text("INSERT INTO widgets (name) VALUES ('after')"))
    assert (await seen.next()).table == "widgets"


def test_payloads_carpool_did_not_write_are_ignored() -> None:
    assert parse_change('{"table": "widgets", "ids": [1, 2]}') == Change(
        "widgets", frozenset({1, 2})
    )
    assert parse_change('{"table": "widgets", "ids": null}') == Change("widgets", None)
    for payload in ("", "[]", '{"table": 1, "ids": []}', '{"ids": []}', '{"table": "t", "ids": 3}'):
        assert parse_change(payload) is None


def test_a_footprint_records_keys_and_tables_only_while_tracking() -> None:
    read_keys("grommets", [1])  # not tracking: nothing to record into
    with tracking() as footprint:
        read_keys("grommets", [1, 2])
        read_table("widgets")
    read_keys("grommets", [3])
    assert footprint == Footprint({"widgets"}, {"grommets": {1, 2}})
    assert footprint.touched_by("grommets", [2, 9])
    assert not footprint.touched_by("grommets", [3])
    assert footprint.touched_by("grommets", None)
    assert footprint.touched_by("widgets", [42])
    assert not footprint.touched_by("widget_parts", None)


def test_a_footprint_index_finds_the_holders_a_change_touches() -> None:
    from carpool.data.footprint import FootprintIndex

    index: FootprintIndex[str] = FootprintIndex()
    index.put("page", Footprint({"widgets"}, {"widget_parts": {1, 2}}))
    index.put("one", Footprint(set(), {"widgets": {1}, "grommets": {7}}))
    assert index.touched("widgets", [1]) == {"page", "one"}
    assert index.touched("widgets", [5]) == {"page"}
    assert index.touched("grommets", [7, 8]) == {"one"}
    assert index.touched("grommets", None) == {"one"}
    assert index.touched("widget_parts", [3]) == set()
    index.put("one", Footprint(set(), {"widgets": {2}}))  # its next run read other rows
    assert index.touched("grommets", [7]) == set()
    index.drop("page")
    index.drop("one")
    assert index.touched("widgets", None) == set()
    assert not index._by_key and not index._any and not index._whole
