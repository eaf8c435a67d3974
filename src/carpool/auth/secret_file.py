"""The embedded-mode signing secret: made once under DATA_DIR, shared by workers and restarts."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

SECRET_FILE = "auth-secret"


def embedded_secret(data_dir: Path) -> str:
    """The secret kept in `data_dir`, created on first use.

    Race-safe between processes: the secret is written whole to a private temporary file,
    then hard-linked into place, which fails if another process got there first; every
    process then reads the one file that won.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    if not path.exists():
        candidate = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
        finally:
            candidate.unlink(missing_ok=True)
    return path.read_text().strip()
