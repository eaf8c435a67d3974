"""Throughput as shipped (issue 22): carpool side by side with the peer a user would pick.

Run: `make bench` (or `.venv/bin/python bench/throughput.py --help`). Needs `wrk` (Debian:
`apt-get install -y wrk`) and the `bench` extra (Starlette, for bench/peer.py).

One embedded PostgreSQL serves three apps, each `uvicorn` with one worker, uvloop, httptools
and no access log: carpool **as shipped** (what `make run` runs: the request log at INFO,
metrics in multi-process mode, Server-Timing; its stderr to a file), carpool with the
request log and metrics **off** (`REQUEST_LOG=false METRICS=false`), and bench/peer.py
(Starlette + raw asyncpg), seeded once with 1,000 grommets and 300 widgets of three parts.
`wrk -t1 -c32` with random ids (and one WebSocket with 16 frames in flight) measures each
workload in turn, for several rounds (the order flips every round). Every ratio of the
issue is printed next to its target, from req/s and from the servers' CPU per answer (read
from /proc), and the in-process counts of bench/inprocess.py after them. The machine is
shared and noisy: only ratios measured side by side mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import orjson
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import AUTH, free_port, running, seed_catalog, serve

BENCH = Path(__file__).resolve().parent
GROMMETS = 1_000
WIDGETS = 300
BATCH_SIZE = 20
WS_IN_FLIGHT = 16
WIDGET_PATH = "/widgets/%d?include=grommets"


@dataclass(frozen=True)
class Run:
    """One wrk measurement: what to call where, and the result key it feeds."""

    key: str
    server: str  # "carpool" or "peer"
    script: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Measured:
    rate: float  # requests (or frames) per second
    answers: int  # requests (or frames) answered during the run
    errors: int  # non-2xx answers, socket errors and timeouts
    note: str = ""
    cpu_us: float = 0.0  # the server process's CPU (user + system) per answer, in µs


# Each group runs back to back; its order flips every round (carpool first, then peer first).
# "carpool" is carpool as shipped; "quiet" the same code with the request log and metrics off.
GROUPS: tuple[tuple[Run, ...], ...] = (
    (
        Run("carpool_get", "carpool", "wrk_get.lua", ("/grommets/%d", str(GROMMETS))),
        Run("peer_get", "peer", "wrk_get.lua", ("/grommets/%d", str(GROMMETS))),
        Run("quiet_get", "quiet", "wrk_get.lua", ("/grommets/%d", str(GROMMETS))),
    ),
    (
        Run("carpool_batch", "carpool", "wrk_batch.lua",
            ("/grommets/%d", str(GROMMETS), str(BATCH_SIZE))),
        Run("quiet_batch", "quiet", "wrk_batch.lua",
            ("/grommets/%d", str(GROMMETS), str(BATCH_SIZE))),
    ),
    (
        Run("carpool_ws", "carpool", "", ()),  # WebSocket frames, measured in Python
        Run("quiet_ws", "quiet", "", ()),
    ),
)  # fmt: skip
# `--more`: the other workloads of earlier rounds, without targets.
MORE: tuple[tuple[Run, ...], ...] = (
    (
        Run("carpool_widget", "carpool", "wrk_get.lua", (WIDGET_PATH, str(WIDGETS))),
        Run("peer_widget", "peer", "wrk_get.lua", (WIDGET_PATH, str(WIDGETS))),
    ),
    (
        Run("carpool_post", "carpool", "wrk_post_grommet.lua", ("/grommets",)),
        Run("peer_post", "peer", "wrk_post_grommet.lua", ("/grommets",)),
    ),
    (Run("peer_get_tx", "peer", "wrk_get.lua", ("/grommets-tx/%d", str(GROMMETS))),),
)  # fmt: skip


# -- servers ----------------------------------------------------------------------------------


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def embedded_database() -> Iterator[tuple[Path, str]]:
    """A throwaway embedded PostgreSQL: (DATA_DIR for carpool, its postgresql:// URL)."""
    from carpool.data.embedded import start_embedded

    with tempfile.TemporaryDirectory(prefix="carpool-throughput-") as data_dir:
        server, url = start_embedded(Path(data_dir) / "pg")
        try:
            yield Path(data_dir), url.replace("postgresql+asyncpg://", "postgresql://", 1)
        finally:
            server.cleanup()


@contextlib.contextmanager
def serve_peer(database_url: str) -> Iterator[str]:
    """bench/peer.py on the same uvicorn settings as carpool; yield its base URL."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": database_url}
    command = [
        sys.executable, "-m", "uvicorn", "peer:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--no-access-log", "--loop", "uvloop",
        "--http", "httptools", "--log-level", "warning",
    ]  # fmt: skip
    with running(command, environment, port) as base:
        yield base


def server_pid(base: str) -> int:
    """The pid of the uvicorn process listening on `base` (found in /proc by its argv)."""
    port = base.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"uvicorn" in argv and port in argv:
                return int(entry.name)
    raise RuntimeError(f"no uvicorn process found for {base}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- checks -----------------------------------------------------------------------------------


def check_same_answers(carpool: str, peer: str) -> None:
    """The peer answers byte-identical reads and the same write shape as carpool, or we stop."""
    with httpx.Client(timeout=30, headers=AUTH) as client:  # the peer ignores the token
        for path, peer_path in (
            ("/grommets/1", "/grommets/1"),
            (f"/grommets/{GROMMETS}", f"/grommets-tx/{GROMMETS}"),
            ("/widgets/1?include=grommets", "/widgets/1?include=grommets"),
            (f"/widgets/{WIDGETS}", f"/widgets/{WIDGETS}"),
        ):
            ours, theirs = client.get(carpool + path), client.get(peer + peer_path)
            if ours.status_code != 200 or ours.content != theirs.content:
                raise SystemExit(
                    f"carpool and the peer disagree on GET {path}:\n"
                    f"  carpool {ours.status_code} {ours.content[:300]!r}\n"
                    f"  peer    {theirs.status_code} {theirs.content[:300]!r}"
                )
        tag = uuid.uuid4().hex[:8]
        shapes = []
        for base in (carpool, peer):
            body = {"name": f"check-{tag}-{base[-5:]}", "material": "brass", "diameter_mm": 6}
            answer = client.post(base + "/grommets", json=body)
            if answer.status_code != 201:
                raise SystemExit(f"POST /grommets on {base} answered {answer.status_code}")
            shapes.append(sorted(answer.json()))
        if shapes[0] != shapes[1]:
            raise SystemExit(f"POST /grommets shapes differ: {shapes}")


# -- measurements -----------------------------------------------------------------------------

_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_COUNT = re.compile(r"(\d+) requests in ")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(base: str, run: Run, *, seconds: int, connections: int) -> Measured:
    """`wrk -t1 -c<connections> -d<seconds>s` with `run`'s Lua script and arguments."""
    args = list(run.args)
    if run.script == "wrk_post_grommet.lua":
        args.append(uuid.uuid4().hex[:12])  # a fresh tag: names never collide across runs
    args.append(str(random.randrange(1, 2**31)))  # the script's random seed
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(BENCH / run.script),
        "-H", f"Authorization: {AUTH['authorization']}", base, "--", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    output = done.stdout
    rate, count = _RATE.search(output), _COUNT.search(output)
    if rate is None or count is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    errors = int(m.group(1)) if (m := _NON_2XX.search(output)) else 0
    if socket_errors := _SOCKET.search(output):
        errors += sum(int(n) for n in socket_errors.groups())
    return Measured(float(rate.group(1)), int(count.group(1)), errors)


async def websocket_frames(base: str, *, seconds: float) -> Measured:
    """GET /grommets/{random id} frames over one socket, WS_IN_FLIGHT in flight, for `seconds`."""
    url = base.replace("http://", "ws://") + "/ws"
    answered = errors = 0
    statuses: collections.Counter[object] = collections.Counter()
    client_cpu = time.process_time()
    async with connect(url, compression=None, max_queue=None, additional_headers=AUTH) as ws:
        frame_ids = iter(range(1, 2**62))

        async def send() -> None:
            path = f"/grommets/{random.randint(1, GROMMETS)}"
            frame = {"id": str(next(frame_ids)), "method": "GET", "path": path}
            await ws.send(orjson.dumps(frame).decode())

        started = time.perf_counter()
        deadline = started + seconds
        for _ in range(WS_IN_FLIGHT):
            await send()
        in_flight = WS_IN_FLIGHT
        while in_flight:
            answer = orjson.loads(await ws.recv())
            in_flight -= 1
            answered += 1
            if answer.get("status") != 200:
                errors += 1
                statuses[answer.get("status")] += 1
            if time.perf_counter() < deadline:
                await send()
                in_flight += 1
        elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    # The Python client shares the cores with the server: say what it cost.
    note = f"client CPU {client_cpu / elapsed:.0%} of a core"
    if statuses:
        note += f", statuses other than 200: {dict(statuses)}"
    return Measured(answered / elapsed, answered, errors, note)


async def database_sessions(database_url: str) -> tuple[int, int]:
    """(Sessions ever opened on the database, transactions it has run): PostgreSQL counts a
    session at each connect, and a transaction per statement sent outside one."""
    conn = await asyncpg.connect(database_url)
    try:
        query = (
            "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        row = await conn.fetchrow(query)
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


def measure(
    bases: dict[str, str],
    database_url: str,
    groups: tuple[tuple[Run, ...], ...],
    *,
    rounds: int,
    seconds: int,
    warmup: int,
    connections: int,
) -> dict[str, list[Measured]]:
    results: dict[str, list[Measured]] = collections.defaultdict(list)
    pids = {server: server_pid(base) for server, base in bases.items()}
    for round_no in range(rounds):
        print(f"-- round {round_no + 1}/{rounds}", flush=True)
        for group in groups:
            for run in group if round_no % 2 == 0 else reversed(group):
                base = bases[run.server]
                if not run.script:  # a WebSocket run
                    if warmup:
                        asyncio.run(websocket_frames(base, seconds=warmup))
                    before = asyncio.run(database_sessions(database_url))
                    cpu = cpu_seconds(pids[run.server])
                    result = asyncio.run(websocket_frames(base, seconds=seconds))
                else:
                    if warmup:
                        wrk(base, run, seconds=warmup, connections=connections)
                    before = asyncio.run(database_sessions(database_url))
                    cpu = cpu_seconds(pids[run.server])
                    result = wrk(base, run, seconds=seconds, connections=connections)
                cpu = cpu_seconds(pids[run.server]) - cpu
                result = dataclasses.replace(result, cpu_us=cpu / max(result.answers, 1) * 1e6)
                # A pool that opens and closes connections under load pays a backend each time.
                after = asyncio.run(database_sessions(database_url))
                opened = after[0] - before[0] - 1
                # Statistics reach pg_stat_database within a second or so: a rough figure.
                xacts = (after[1] - before[1]) / max(result.answers, 1)
                flag = f"  ({result.errors} ERRORS)" if result.errors else ""
                notes = ", ".join(
                    filter(
                        None,
                        [
                            f"{opened} new DB connections",
                            f"~{xacts:.2f} DB transactions per answer",
                            result.note,
                            _load(),
                        ],
                    )
                )
                print(
                    f"   {run.key:<15} {result.rate:>9.1f}/s {result.cpu_us:>7.0f} µs CPU/answer"
                    f"  ({notes}){flag}",
                    flush=True,
                )
                results[run.key].append(result)
    return results


# -- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """`ours` / `theirs` (rates; `scale` turns ours into lookups), at least `least` (None: none)."""

    label: str
    ours: str
    theirs: str
    least: float | None
    scale: int = 1


TARGETS = (
    Target("GET /grommets/{id} vs peer", "carpool_get", "peer_get", 0.7),
    Target(f"POST /batch of {BATCH_SIZE}: lookups vs peer GETs", "carpool_batch", "peer_get",
           5.0, BATCH_SIZE),
    Target(f"WebSocket, {WS_IN_FLIGHT} in flight: frames vs peer GETs", "carpool_ws",
           "peer_get", 1.2),
    Target("observability's price: GET, shipped vs off", "carpool_get", "quiet_get", 0.9),
    Target(f"observability's price: batch of {BATCH_SIZE}", "carpool_batch", "quiet_batch", 0.9),
    Target(f"POST /batch of {BATCH_SIZE} vs carpool's own GETs", "carpool_batch", "carpool_get",
           None, BATCH_SIZE),
    Target("(log and metrics off) GET vs peer", "quiet_get", "peer_get", None),
    Target(f"(log and metrics off) batch of {BATCH_SIZE} vs peer", "quiet_batch", "peer_get",
           None, BATCH_SIZE),
    Target("(log and metrics off) WebSocket vs peer", "quiet_ws", "peer_get", None),
    Target("(old) WebSocket vs carpool's own GET", "carpool_ws", "carpool_get", None),
    Target("GET /widgets/{id}?include=grommets vs peer", "carpool_widget", "peer_widget", None),
    Target("POST /grommets vs peer", "carpool_post", "peer_post", None),
    Target("GET /grommets/{id} vs peer in READ ONLY tx", "carpool_get", "peer_get_tx", None),
)  # fmt: skip
ITEM_CPU_TARGET_US = 15.0
"""Per batch item, server CPU beyond a single GET's, at most (µs)."""
_UNITS = {"batch": "batches/s", "ws": "frames/s"}


def ratio(target: Target, r: dict[str, Measured]) -> tuple[float, float]:
    """(throughput ratio, the same ratio from the servers' CPU per answer) for one round."""
    ours, theirs = r[target.ours], r[target.theirs]
    by_rate = ours.rate * target.scale / theirs.rate
    by_cpu = theirs.cpu_us / (ours.cpu_us / target.scale) if ours.cpu_us else 0.0
    return by_rate, by_cpu


def item_cpu_us(r: dict[str, Measured], server: str) -> float:
    """Server CPU per batch item beyond a single GET's: (batch - GET) / (items - 1), in µs."""
    return (r[f"{server}_batch"].cpu_us - r[f"{server}_get"].cpu_us) / (BATCH_SIZE - 1)


def _rate(key: str, measured: Measured) -> str:
    unit = _UNITS.get(key.rsplit("_", 1)[-1], "req/s")
    return f"{key} {measured.rate:.0f} {unit}"


def report(results: dict[str, list[Measured]], *, connections: int) -> bool:
    """Print each round's ratios and a summary; True when every target is met in every round.

    Throughput is what the issue's targets are about. The ratio of the servers' CPU per answer
    (the Python worker alone; PostgreSQL's backends are not counted) is printed beside it:
    it moves much less when other work on the machine steals cores during a run.
    """
    rounds = len(results["carpool_get"])
    per_round = [{key: runs[i] for key, runs in results.items()} for i in range(rounds)]
    targets = [t for t in TARGETS if t.ours in results and t.theirs in results]
    for i, found in enumerate(per_round):
        print(f"\nround {i + 1} (wrk -t1 -c{connections}; WebSocket: one socket)")
        for target in targets:
            by_rate, by_cpu = ratio(target, found)
            aim = f"target >= {target.least:g}x" if target.least else "no target"
            verdict = "" if target.least is None or by_rate >= target.least else "  MISSED"
            print(
                f"  {target.label}: {_rate(target.ours, found[target.ours])},"
                f" {_rate(target.theirs, found[target.theirs])}, ratio {by_rate:.2f}x ({aim})"
                f"{verdict}; by server CPU per answer {by_cpu:.2f}x"
            )
        for server in ("carpool", "quiet"):
            print(
                f"  CPU per batch item beyond a GET's, {server}:"
                f" {item_cpu_us(found, server):.1f} µs"
            )
    print(
        f"\nsummary over {rounds} rounds: median (min-max); a target is met when met in every"
        " round; carpool = as shipped, quiet = request log and metrics off"
    )
    print(f"  {'':<50} {'throughput':>20} {'target':>9} {'':<6} {'by CPU':>20}")
    met_everywhere = True
    for target in targets:
        pairs = [ratio(target, found) for found in per_round]
        rates, cpus = [p[0] for p in pairs], [p[1] for p in pairs]
        met = target.least is None or min(rates) >= target.least
        met_everywhere &= met
        aim = f">= {target.least:g}x" if target.least else "none"
        status = "" if target.least is None else ("met" if met else "MISSED")
        print(
            f"  {target.label:<50} {_spread(rates, 'x'):>20} {aim:>9} {status:<6}"
            f" {_spread(cpus, 'x'):>20}"
        )
    for server, label in (("carpool", "as shipped"), ("quiet", "log and metrics off")):
        items = [item_cpu_us(found, server) for found in per_round]
        met = server != "carpool" or max(items) <= ITEM_CPU_TARGET_US
        met_everywhere &= met
        aim = f"<= {ITEM_CPU_TARGET_US:g}" if server == "carpool" else "none"
        status = ("met" if met else "MISSED") if server == "carpool" else ""
        print(
            f"  {'CPU per item beyond a GET, µs, ' + label:<50} {_spread(items, ''):>20}"
            f" {aim:>9} {status:<6}"
        )
    print("  server CPU per answer, µs (median):")
    for key, runs in sorted(results.items()):
        print(f"    {key:<16} {statistics.median(m.cpu_us for m in runs):>8.0f}")
    errors = {key: sum(m.errors for m in runs) for key, runs in results.items()}
    if any(errors.values()):
        print(f"\nWARNING: errors (non-2xx, socket errors, timeouts) during runs: {errors}")
    return met_everywhere


def _spread(values: list[float], unit: str) -> str:
    middle, low, high = statistics.median(values), min(values), max(values)
    return f"{middle:.2f}{unit} ({low:.2f}-{high:.2f})"


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


# -- profile ----------------------------------------------------------------------------------


def profile(
    carpool: str,
    output: Path,
    *,
    seconds: int,
    connections: int,
    workload: str = "carpool_get",
    nonblocking: bool = False,
) -> None:
    """py-spy the carpool worker under one wrk workload (the single GET by default); write
    collapsed stacks. py-spy stops the worker for each sample, and on this VM the stop lands
    at system calls more often than elsewhere: `nonblocking` reads it running instead (some
    samples torn), which does not over-sample lines that make a system call."""
    spy = _py_spy()
    if spy is None:
        print("py-spy is missing: .venv/bin/pip install py-spy", file=sys.stderr)
        return
    run = next(r for group in GROUPS + MORE for r in group if r.key == workload and r.script)
    load = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds + 3}s", "-s", str(BENCH / run.script),
         "-H", f"Authorization: {AUTH['authorization']}", carpool, "--", *run.args, "1"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        command = [spy, "record", "--pid", str(server_pid(carpool)), "-d", str(seconds)]
        command += ["--format", "raw", "-o", str(output)]
        if nonblocking:
            command.append("--nonblocking")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        load.wait()
    summarise_profile(output)


def _library(frame: str) -> str:
    """The package a frame `name (path:line)` runs in: `sqlalchemy`, `asyncio`, `carpool`, ..."""
    path = frame.rsplit(" (", 1)[-1].rstrip(")").rsplit(":", 1)[0]
    return path.split("/", 1)[0]  # a path without "/" is exec'd code (Sanic's handle_request)


def summarise_profile(path: Path, top: int = 25) -> None:
    """Inclusive shares of the largest frames, and self shares by frame and by package, of a
    py-spy raw (collapsed) file. SQLAlchemy's greenlets show as stacks of their own."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        if not stack.strip():
            own["(no Python frame)"] += samples
            packages["(no Python frame)"] += samples
            continue
        frames = [re.sub(r" \(.*?/site-packages/", " (", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
        packages[_library(frames[-1])] += samples
    print(f"\nprofile {path}: {total} samples of the carpool worker")
    print("  largest inclusive shares (below the event loop's trunk):")
    trunk = max(inclusive.values(), default=0) * 0.99
    shown = [(frame, samples) for frame, samples in inclusive.most_common() if samples < trunk]
    for frame, samples in shown[:top]:
        print(f"    {samples / total:6.1%}  {frame}")
    print("  largest self shares:")
    for frame, samples in own.most_common(top // 2):
        print(f"    {samples / total:6.1%}  {frame}")
    print("  self shares by package (the leaf frame's):")
    for package, samples in packages.most_common(top // 2):
        print(f"    {samples / total:6.1%}  {package}")


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every workload (2)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="warm-up seconds per run, 0: none (1)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (32)")
    parser.add_argument(
        "--profile", type=Path, metavar="FILE",
        help="also py-spy carpool under the GET /grommets/{id} load into FILE (collapsed stacks)",
    )  # fmt: skip
    parser.add_argument("--profile-seconds", type=int, default=8, help="py-spy duration (8)")
    parser.add_argument(
        "--profile-workload", default="carpool_get", metavar="NAME",
        help="the wrk workload to profile under: carpool_get (default), carpool_batch, ...",
    )  # fmt: skip
    parser.add_argument(
        "--profile-nonblocking", action="store_true",
        help="py-spy without stopping the worker (no bias towards lines making system calls)",
    )  # fmt: skip
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--more", action="store_true",
        help="also the widget, POST and READ ONLY peer workloads of earlier rounds (no targets)",
    )  # fmt: skip
    parser.add_argument(
        "--no-inprocess", dest="inprocess", action="store_false",
        help="skip bench/inprocess.py (calls and CPU per GET, item and frame, in-process)",
    )  # fmt: skip
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu),"
            " or build it from https://github.com/wg/wrk, then run this again.",
            file=sys.stderr,
        )
        return 2
    try:
        import starlette  # noqa: F401
    except ImportError:
        print("Starlette is missing: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    groups = GROUPS + (MORE if options.more else ())
    with contextlib.ExitStack() as stack:
        data_dir, url = stack.enter_context(embedded_database())
        log = data_dir / "carpool.log"
        # carpool joins the server (DATA_DIR) and migrates it; the peer connects to its URL.
        bases = {
            name: stack.enter_context(
                serve(DATA_DIR=str(data_dir), stderr=log if name == "carpool" else None, **env)
            )
            for name, env in (("carpool", shipped(data_dir)), ("quiet", quiet(data_dir)))
        }
        bases["peer"] = stack.enter_context(serve_peer(url))
        carpool = bases["carpool"]
        asyncio.run(_seed(carpool))
        check_same_answers(carpool, bases["peer"])
        check_same_answers(bases["quiet"], bases["peer"])
        print(
            f"seeded {GROMMETS} grommets and {WIDGETS} widgets of 3 parts; {bases};"
            f" {options.duration:g} s per run, {options.warmup:g} s warm-up; carpool's log"
            f" lines go to {log}"
        )
        results = (
            measure(
                bases,
                url,
                groups,
                rounds=options.rounds,
                seconds=options.duration,
                warmup=options.warmup,
                connections=options.connections,
            )
            if options.rounds > 0  # --rounds 0 --profile FILE: the profile alone
            else None
        )
        if options.profile is not None:
            profile(
                carpool,
                options.profile,
                seconds=options.profile_seconds,
                connections=options.connections,
                workload=options.profile_workload,
                nonblocking=options.profile_nonblocking,
            )
        logged = log.stat().st_size
        print(f"carpool as shipped wrote {logged / 1e6:.1f} MB of log lines")
    met = results is None or report(results, connections=options.connections)
    if options.inprocess:
        print(flush=True)
        subprocess.run([sys.executable, str(BENCH / "inprocess.py")], check=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 1 if options.check and not met else 0


def shipped(data_dir: Path) -> dict[str, str]:
    """carpool's environment as `make run` ships it: the request log at INFO, metrics in
    multi-process mode, Server-Timing (its stderr goes to a file)."""
    metrics = data_dir / "metrics-shipped"
    metrics.mkdir(parents=True)
    return {"WEB_CONCURRENCY": "1", "PROMETHEUS_MULTIPROC_DIR": str(metrics), "LOG_LEVEL": "INFO"}


def quiet(data_dir: Path) -> dict[str, str]:
    """The same, with the request log and metrics off."""
    return {**shipped(data_dir / "q"), "REQUEST_LOG": "false", "METRICS": "false"}


async def _seed(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=AUTH) as client:
        await seed_catalog(client, grommets=GROMMETS, widgets=WIDGETS)


if __name__ == "__main__":
    sys.exit(main())
