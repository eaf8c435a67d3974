"""Two revisions of carpool side by side: the same loads on each, alternating, one database.

    .venv/bin/python bench/ab.py REV [--rounds 6] [--duration 5] [--loads get,batch,ws]

compares the working tree ("after") with git revision REV ("before", checked out in a
temporary worktree and run with this tree's virtualenv). Both run under `uvicorn asgi:app`
(one worker, uvloop, httptools, no access log) on one embedded PostgreSQL; each round runs
every load on both, in an order that flips every round, and reads each server's CPU time
from /proc. It prints CPU per answer (µs) and answers/s per round, then the medians and
after/before.

Why: on a shared machine the rounds of one `bench/throughput.py` run differ by more than a
change of a few per cent does; two revisions measured in the same minutes differ only by
the change (docs/performance.md, "The latest run"). The "before" tree runs on the schema
the working tree migrates to: compare revisions whose migrations agree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from _server import _SECRET, AUTH, ROOT, free_port, running, seed_catalog
from throughput import (
    GROMMETS,
    GROUPS,
    WIDGETS,
    Measured,
    cpu_seconds,
    embedded_database,
    server_pid,
    websocket_frames,
    wrk,
)

_WRK = {run.key: run for group in GROUPS for run in group if run.script}
LOADS: dict[str, Callable[[str, int], Measured]] = {
    "get": lambda base, s: wrk(base, _WRK["carpool_get"], seconds=s, connections=32),
    "widget": lambda base, s: wrk(base, _WRK["carpool_widget"], seconds=s, connections=32),
    "batch": lambda base, s: wrk(base, _WRK["carpool_batch"], seconds=s, connections=32),
    "post": lambda base, s: wrk(base, _WRK["carpool_post"], seconds=s, connections=32),
    "ws": lambda base, s: asyncio.run(websocket_frames(base, seconds=s)),
}


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="carpool-ab-") as parent:
        path = Path(parent) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=False)


@contextlib.contextmanager
def carpool(tree: Path, data_dir: Path) -> Iterator[str]:
    """`uvicorn asgi:app` of `tree` (its own `src` first on the path) joining `data_dir`."""
    port = free_port()
    environment = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "SEED_DEMO_DATA": "false",
        "LOG_LEVEL": "WARNING",
        "AUTH_JWT_SECRET": _SECRET,
        "WEB_CONCURRENCY": "1",
        "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)]),
    }
    environment.pop("DATABASE_URL", None)
    command = [
        sys.executable, "-m", "uvicorn", "asgi:app", "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    ]  # fmt: skip
    with running(command, environment, port, cwd=tree) as base:
        yield base


async def seed(base: str) -> None:
    """The rows `bench/throughput.py` measures on."""
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=AUTH) as client:
        await seed_catalog(client, grommets=GROMMETS, widgets=WIDGETS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("revision", help="the git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of every load (6)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--loads", default="get,batch,ws", help=f"of {','.join(LOADS)}")
    options = parser.parse_args()
    loads = [name.strip() for name in options.loads.split(",") if name.strip()]
    unknown = [name for name in loads if name not in LOADS]
    if unknown or not loads:
        parser.error(f"unknown loads {unknown}; choose from {', '.join(LOADS)}")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    cpu: dict[tuple[str, str], list[float]] = {}
    with embedded_database() as (data_dir, _), worktree(options.revision) as before_tree:
        # The working tree first: it migrates the database, and seeds it.
        with carpool(ROOT, data_dir) as after, carpool(before_tree, data_dir) as before:
            asyncio.run(seed(after))
            servers = {"before": before, "after": after}
            pids = {name: server_pid(base) for name, base in servers.items()}
            for base in servers.values():  # warm both up
                for name in loads:
                    LOADS[name](base, 1)
            for round_no in range(options.rounds):
                order = list(servers) if round_no % 2 == 0 else list(reversed(servers))
                for name in loads:
                    for which in order:
                        started = cpu_seconds(pids[which])
                        result = LOADS[name](servers[which], options.duration)
                        used = (cpu_seconds(pids[which]) - started) / max(result.answers, 1)
                        cpu.setdefault((name, which), []).append(used * 1e6)
                        print(
                            f"round {round_no + 1} {name:<6} {which:<6} {result.rate:9.1f}/s"
                            f" {used * 1e6:7.0f} µs CPU/answer"
                            + (f" ({result.errors} ERRORS)" if result.errors else ""),
                            flush=True,
                        )
    print(f"\n{options.revision} (before) against the working tree (after), CPU per answer:")
    for name in loads:
        was, now = cpu[(name, "before")], cpu[(name, "after")]
        print(
            f"  {name:<6} before {statistics.median(was):7.0f} µs ({min(was):.0f}-{max(was):.0f})"
            f"  after {statistics.median(now):7.0f} µs ({min(now):.0f}-{max(now):.0f})"
            f"  after/before {statistics.median(now) / statistics.median(was):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
