"""How many of a widget can be built from the grommets in stock, and which grommet limits it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from carpool.catalog import reads
from carpool.catalog.queries import Row
from carpool.data.unit_of_work import Work

# Units of one grommet in stock, by grommet id; raises an AppError when it cannot tell.
StockLevel = Callable[[int], Awaitable[int]]


async def widget_availability(uow: Work, widget_id: int, stock: StockLevel) -> Row | None:
    """The widget's availability (see `summarise`), or None if there is no such widget.

    The stock of every part is asked for at once; the first failure is the answer, and
    the other questions still in flight are abandoned.
    """
    widget = await reads.widget(uow, widget_id, include_grommets=False)
    if widget is None:
        return None
    parts: list[Row] = widget["parts"]
    levels = await _stock_levels(stock, [part["grommet_id"] for part in parts])
    return summarise(widget_id, parts, levels)


async def _stock_levels(stock: StockLevel, grommet_ids: Sequence[int]) -> dict[int, int]:
    tasks = [asyncio.ensure_future(stock(grommet_id)) for grommet_id in grommet_ids]
    try:
        levels = await asyncio.gather(*tasks)
    except BaseException:
        # gather leaves the others running; their answers no longer matter.
        for task in tasks:
            task.cancel()
        raise
    return dict(zip(grommet_ids, levels, strict=True))


def summarise(widget_id: int, parts: Sequence[Row], levels: dict[int, int]) -> Row:
    """`{"widget_id", "buildable", "limited_by", "parts": [...]}` from the stock `levels`.

    `buildable` is how many whole widgets the stock allows; `limited_by` the grommet that
    allows the fewest (the lowest id among equals). A widget with no parts needs nothing:
    both are null.
    """
    lines = [
        {
            "grommet_id": part["grommet_id"],
            "quantity": part["quantity"],
            "available": levels[part["grommet_id"]],
            "enough_for": levels[part["grommet_id"]] // part["quantity"],
        }
        for part in sorted(parts, key=lambda p: p["grommet_id"])
    ]
    limiting = min(lines, key=lambda line: line["enough_for"], default=None)
    return {
        "widget_id": widget_id,
        "buildable": limiting["enough_for"] if limiting else None,
        "limited_by": limiting["grommet_id"] if limiting else None,
        "parts": lines,
    }
