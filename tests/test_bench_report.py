"""bench/throughput.py's verdicts: every target of the issue printed, `--check` failing on a
miss (the servers themselves are run by `make bench`, not by the suite)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def throughput() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import throughput as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def results(module: Any, *, batch_us: float, frames: float) -> dict[str, list[Any]]:
    """One round in which every workload answered; the peer's GET costs 100 µs."""
    measured = module.Measured
    return {
        "peer_get": [measured(1000.0, 5000, 0, cpu_us=100.0)],
        "carpool_get": [measured(800.0, 4000, 0, cpu_us=125.0)],
        "quiet_get": [measured(820.0, 4100, 0, cpu_us=120.0)],
        "carpool_batch": [measured(300.0, 1500, 0, cpu_us=batch_us)],
        "quiet_batch": [measured(310.0, 1550, 0, cpu_us=batch_us)],
        "carpool_ws": [measured(frames, 6500, 0, cpu_us=70.0)],
        "quiet_ws": [measured(frames, 6500, 0, cpu_us=70.0)],
    }


def test_a_round_meeting_every_target_passes_and_says_so(
    throughput: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # A batch of 20 at 300/s is 6,000 lookups/s (6x); 125 + 19 x 10 µs = 315 µs a batch.
    assert throughput.report(results(throughput, batch_us=315.0, frames=1300.0), connections=32)
    printed = capsys.readouterr().out
    assert "MISSED" not in printed
    for label in (
        "GET /grommets/{id} vs peer",
        "lookups vs peer GETs",
        "frames vs peer GETs",
        "observability's price: GET",
        "observability's price: batch",
        "CPU per item beyond a GET",
    ):
        assert label in printed
    assert "10.00 (10.00-10.00)" in printed  # µs per item beyond the GET


def test_a_missed_target_fails_the_check(
    throughput: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Frames at 1.1x the peer, and 30 µs per item: two misses.
    found = results(throughput, batch_us=125.0 + 19 * 30.0, frames=1100.0)
    assert not throughput.report(found, connections=32)
    printed = capsys.readouterr().out
    assert printed.count("MISSED") >= 2
