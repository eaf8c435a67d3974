"""The embedded PostgreSQL: several workers starting at once on a fresh DATA_DIR share it."""

from __future__ import annotations

from pathlib import Path

import pytest

from carpool.data import embedded


def test_a_worker_losing_the_race_to_create_the_data_dir_still_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make run` starts two workers at once. pgserver checks that the directory is missing and
    # then makes it with exist_ok=False: a second worker doing the same in between made the
    # first fail with FileExistsError. Here the other worker "wins" right after the check.
    pgdata = (tmp_path / "data" / "pg").resolve()
    real_exists = Path.exists

    def other_worker_wins(path: Path, *args: object, **kwargs: object) -> bool:
        if path == pgdata and not real_exists(path):
            path.mkdir(parents=True)  # the other worker, just after this one looked
            return False
        return real_exists(path)

    monkeypatch.setattr(Path, "exists", other_worker_wins)
    server, url = embedded.start_embedded(pgdata, cleanup_mode="delete")
    try:
        assert url.startswith("postgresql+asyncpg://")
    finally:
        monkeypatch.undo()
        server.cleanup()
