"""The fault suite prints one line of counts at the end of the run."""

from __future__ import annotations

from typing import Any

from tests.faults import tally


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if tally.COUNTS:
        terminalreporter.write_line(tally.summary())
