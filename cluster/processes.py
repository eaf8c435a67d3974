"""Waiting for the servers a topology starts."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes],
    *,
    what: str,
    log: Path | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Returns once 127.0.0.1:`port` accepts; RuntimeError if `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text()[-2000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"{what} exited at start: {said}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s} s")
