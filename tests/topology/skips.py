"""Topology tests skip, saying why, when a package they need is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cluster.postgres import Missing


@contextmanager
def unless_missing() -> Iterator[None]:
    """Around starting the topology's servers: a Missing package skips the test."""
    try:
        yield
    except Missing as exc:
        pytest.skip(str(exc))
