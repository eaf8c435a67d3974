"""The embedded secret is made once and shared by every process that starts at the same time."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

from carpool.auth.secret_file import SECRET_FILE, embedded_secret


def _read(
    data_dir: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[str]
) -> None:
    barrier.wait()
    out.put(embedded_secret(Path(data_dir)))


def test_workers_starting_together_all_get_the_one_secret(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = 6
    barrier = context.Barrier(workers)
    out: Any = context.Queue()
    processes = [
        context.Process(target=_read, args=(str(tmp_path), barrier, out)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    secrets = {out.get(timeout=60) for _ in processes}
    for process in processes:
        process.join(timeout=60)
    assert len(secrets) == 1
    (secret,) = secrets
    assert len(secret) >= 32
    assert embedded_secret(tmp_path) == secret, "a restart keeps it"
    mode = stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode)
    assert mode == 0o600, "only its owner may read it"
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE], "no temporary file is left"
