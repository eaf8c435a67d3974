"""The fault suite: each test bounded in time, and one line of counts at the end of the run."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults import tally

# A fault test that hangs is a failure, not a stuck CI job.
FAULT_TEST_TIMEOUT_S = 120.0
_HERE = Path(__file__).parent


def _bounded(test: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(FAULT_TEST_TIMEOUT_S):
            return await test(*args, **kwargs)

    return bounded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and _HERE in Path(item.path).parents:
            if inspect.iscoroutinefunction(item.obj):
                item.obj = _bounded(item.obj)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if tally.COUNTS:
        terminalreporter.write_line(tally.summary())
