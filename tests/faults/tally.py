"""The fault suite's counts, printed on one line at the end of the run (see conftest.py)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()


def record(**counts: int | float) -> None:
    """Add `counts` (name=value) to the suite's summary line."""
    for name, value in counts.items():
        COUNTS[name] += value  # type: ignore[assignment]


def summary() -> str:
    return "fault suite: " + ", ".join(f"{name}={COUNTS[name]:g}" for name in sorted(COUNTS))
