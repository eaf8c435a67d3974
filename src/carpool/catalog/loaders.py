"""The catalog's loaders (grommets, widgets, parts by widget id); how writes keep them honest."""

from __future__ import annotations

from carpool.catalog import queries
from carpool.catalog.queries import Row
from carpool.data.loaders import KeyLoader
from carpool.data.unit_of_work import Work


def grommets(uow: Work) -> KeyLoader[int, Row]:
    """Grommet rows by id (None: no such grommet), one loader per unit of work."""
    return uow.loader("catalog.grommets", _grommets)


def widgets(uow: Work) -> KeyLoader[int, Row]:
    """Widget rows without parts by id (None: no such widget)."""
    return uow.loader("catalog.widgets", _widgets)


def widget_parts(uow: Work) -> KeyLoader[int, list[Row]]:
    """Each widget's parts (`{"grommet_id", "quantity"}` by grommet id) by widget id."""
    return uow.loader("catalog.widget_parts", _widget_parts)


def grommet_written(uow: Work, grommet_id: int, row: Row | None) -> None:
    """After a write in `uow`: `row` is the grommet's state now (None: it is gone)."""
    grommets(uow).prime(grommet_id, row)


def widget_written(uow: Work, widget_id: int, row: Row | None, parts: list[Row] | None) -> None:
    """After a write in `uow`: `row` is the widget now (None: gone), `parts` its parts if changed.

    `parts` None means they did not change (or, with `row` None, went with the widget).
    """
    widgets(uow).prime(widget_id, row)
    if row is None:
        widget_parts(uow).prime(widget_id, [])
    elif parts is not None:
        # The order and shape `queries.parts_by_widget_ids` answers, so a later load is the same.
        stored = [{"grommet_id": p["grommet_id"], "quantity": p["quantity"]} for p in parts]
        widget_parts(uow).prime(widget_id, sorted(stored, key=lambda p: p["grommet_id"]))


def _grommets(uow: Work) -> KeyLoader[int, Row]:
    async def fetch(ids: list[int]) -> dict[int, Row]:
        return await uow.run(queries.grommets_by_ids, ids)

    return KeyLoader(fetch, coalesce=uow.coalesce, source="grommets")


def _widgets(uow: Work) -> KeyLoader[int, Row]:
    async def fetch(ids: list[int]) -> dict[int, Row]:
        return await uow.run(queries.widgets_by_ids, ids)

    return KeyLoader(fetch, coalesce=uow.coalesce, source="widgets")


def _widget_parts(uow: Work) -> KeyLoader[int, list[Row]]:
    async def fetch(ids: list[int]) -> dict[int, list[Row]]:
        return await uow.run(queries.parts_by_widget_ids, ids)

    return KeyLoader(fetch, coalesce=uow.coalesce, source="widget_parts")
