"""Loaders owned by a unit of work: coalescing, caching, forgetting, on real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from carpool.data.loaders import KeyLoader
from carpool.data.sql import Connection
from carpool.data.unit_of_work import UnitOfWork
from tests.conftest import OpenUnit


# A table of the test's own, so these tests say nothing of the catalog.
async def _make_table(conn: Connection) -> None:
    await conn.execute("CREATE TEMP TABLE notes (k bigint PRIMARY KEY, v text) ON COMMIT DROP")
    await conn.execute("INSERT INTO notes SELECT k, 'v' || k FROM generate_series(1, 1000) k")


async def _notes_by_keys(conn: Connection, keys: list[int]) -> dict[int, str]:
    rows = await conn.rows("SELECT k, v FROM notes WHERE k = ANY($1::bigint[])", [keys])
    return {row["k"]: row["v"] for row in rows}


async def _set_note(conn: Connection, key: int, value: str) -> None:
    await conn.execute("UPDATE notes SET v = $2 WHERE k = $1", [key, value])


class Recorder:
    """A fetch through the unit of work that remembers the keys of each call."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.calls: list[list[int]] = []

    async def __call__(self, keys: list[int]) -> dict[int, str]:
        self.calls.append(list(keys))
        return await self.uow.run(_notes_by_keys, keys)


def notes(uow: UnitOfWork) -> KeyLoader[int, str]:
    return uow.loader("test.notes", lambda u: KeyLoader(Recorder(u), coalesce=u.coalesce))


def calls_of(loader: KeyLoader[int, str]) -> list[list[int]]:
    recorder = loader._fetch
    assert isinstance(recorder, Recorder)
    return recorder.calls


async def ready(open_uow: OpenUnit, **overrides: Any) -> UnitOfWork:
    uow = await open_uow(**overrides)
    await uow.run(_make_table)
    uow.stats.queries = 0
    return uow


async def test_a_loader_is_made_on_first_use_and_then_reused(open_uow: OpenUnit) -> None:
    uow = await open_uow()
    made: list[UnitOfWork] = []

    def make(u: UnitOfWork) -> KeyLoader[int, str]:
        made.append(u)
        return KeyLoader(Recorder(u))

    assert not uow.has_connection
    first = uow.loader("x", make)
    assert uow.loader("x", make) is first and made == [uow]
    assert uow.loader("y", make) is not first and len(made) == 2
    # Making a loader is free: it touches nothing until something is loaded.
    assert not uow.has_connection and uow.stats.queries == 0


async def test_concurrent_loads_from_many_tasks_become_one_query(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    keys = [5, 3, 999, 1, 42, 7, 100, 250, 640, 2]

    async def one(key: int) -> str | None:
        return await notes(uow).load(key)

    values = await asyncio.gather(*(one(key) for key in keys))
    assert values == [f"v{k}" for k in keys]
    assert uow.stats.queries == 1
    assert calls_of(notes(uow)) == [keys]


async def test_missing_keys_load_as_none_only_for_themselves(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    values = await asyncio.gather(*(notes(uow).load(k) for k in (1, 5000, 2, -3)))
    assert values == ["v1", None, "v2", None]
    assert uow.stats.queries == 1


async def test_a_key_loaded_once_is_not_fetched_again(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    assert await loader.load_many([1, 2, 2, 1]) == ["v1", "v2", "v2", "v1"]
    assert await loader.load(2) == "v2"
    assert await loader.load_many([1, 3]) == ["v1", "v3"]
    assert calls_of(loader) == [[1, 2], [3]]
    assert uow.stats.queries == 2


async def test_a_thousand_keys_are_one_query_never_split(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    keys = list(range(1, 1001))
    assert await notes(uow).load_many(keys) == [f"v{k}" for k in keys]
    assert uow.stats.queries == 1


async def test_prime_replaces_what_was_loaded(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    assert await loader.load(1) is not None
    await uow.run(_set_note, 1, "new")
    loader.prime(1, "new")
    loader.prime(4000, None)
    assert await loader.load_many([1, 4000]) == ["new", None]
    assert uow.stats.queries == 2  # the first load and the update; nothing after


async def test_forget_and_forget_loaded_make_the_next_load_read_again(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    await loader.load_many([1, 2])
    await uow.run(_set_note, 1, "one")
    await uow.run(_set_note, 2, "two")
    loader.forget(1)
    assert await loader.load_many([1, 2]) == ["one", "v2"]
    uow.forget_loaded()
    assert await loader.load(2) == "two"
    assert calls_of(loader) == [[1, 2], [1], [2]]


async def test_undoing_a_savepoint_forgets_what_was_loaded_inside_it(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    assert await loader.load(1) == "v1"
    async with uow.savepoint() as point:
        await uow.run(_set_note, 1, "doomed")
        loader.prime(1, "doomed")
        assert await loader.load(1) == "doomed"
        await point.undo()
    assert await loader.load(1) == "v1"


async def test_a_savepoint_rolled_back_by_an_exception_forgets_too(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    with pytest.raises(RuntimeError):
        async with uow.savepoint():
            await uow.run(_set_note, 2, "doomed")
            loader.forget(2)
            assert await loader.load(2) == "doomed"
            raise RuntimeError("the item failed")
    assert await loader.load(2) == "v2"


async def test_a_kept_savepoint_keeps_what_was_loaded(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    async with uow.savepoint():
        await uow.run(_set_note, 3, "kept")
        loader.prime(3, "kept")
    queries = uow.stats.queries
    assert await loader.load(3) == "kept"
    assert uow.stats.queries == queries


async def test_a_cancelled_caller_does_not_fail_the_others_sharing_its_key(
    open_uow: OpenUnit,
) -> None:
    uow = await ready(open_uow)
    loader = notes(uow)
    doomed = asyncio.create_task(loader.load(9))
    survivor = asyncio.create_task(loader.load(9))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await survivor == "v9"
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await loader.load(9) == "v9"  # and the cache holds the value, not a cancellation
    assert uow.stats.queries == 1


async def test_a_failed_fetch_fails_its_waiters_and_is_not_remembered(
    open_uow: OpenUnit,
) -> None:
    uow = await ready(open_uow)
    attempts: list[list[int]] = []

    async def flaky(keys: list[int]) -> dict[int, str]:
        attempts.append(keys)
        if len(attempts) == 1:
            raise ConnectionError("the first fetch fails")
        return await uow.run(_notes_by_keys, keys)

    loader: KeyLoader[int, str] = KeyLoader(flaky)
    results = await asyncio.gather(loader.load(1), loader.load(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await loader.load_many([1, 2]) == ["v1", "v2"]
    assert attempts == [[1, 2], [1, 2]]


async def test_with_coalescing_off_every_load_is_its_own_query(open_uow: OpenUnit) -> None:
    uow = await ready(open_uow, coalesce=False)
    loader = notes(uow)
    values = await asyncio.gather(*(loader.load(k) for k in (1, 2, 3, 3)))
    assert values == ["v1", "v2", "v3", "v3"]
    assert await loader.load(1) == "v1"
    assert uow.stats.queries == 5
    assert sorted(calls_of(loader)) == [[1], [1], [2], [3], [3]]
    loader.prime(1, "ignored")  # nothing is remembered, so nothing can go stale
    assert await loader.load(1) == "v1"


async def test_a_failed_fetch_after_a_cancelled_load_many_is_not_reported_unretrieved() -> None:
    """A caller that leaves (client gone) stops waiting; the fetch then failing (its unit of
    work ended meanwhile) is nobody's error: asyncio must not log it as never retrieved."""
    import gc

    reports: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reports.append(context))
    release = asyncio.Event()

    async def failing(keys: list[int]) -> dict[int, str]:
        await release.wait()
        raise RuntimeError("this unit of work has already finished")

    try:
        loader: KeyLoader[int, str] = KeyLoader(failing)
        caller = asyncio.ensure_future(loader.load_many([1, 2]))
        await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        assert reports == []
    finally:
        loop.set_exception_handler(None)
