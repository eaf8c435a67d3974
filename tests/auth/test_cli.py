"""`carpool token` prints tokens the server accepts, with the scopes asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from carpool.auth.cli import main
from carpool.auth.identity import KNOWN_SCOPES
from carpool.auth.secret_file import embedded_secret
from tests.helpers import TEST_SECRET

CARPOOL = Path(sys.executable).parent / "carpool"


def decode(token: str, secret: str = TEST_SECRET) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, secret, algorithms=["HS256"])
    return claims


def test_the_console_script_signs_with_the_configured_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"AUTH_JWT_SECRET": TEST_SECRET, "DATABASE_URL": "postgresql://x/y", "PATH": ""}
    done = subprocess.run(
        [str(CARPOOL), "token", "--scope", "catalog:read", "--sub", "ci", "--ttl", "60"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    claims = decode(done.stdout.strip())
    assert claims["sub"] == "ci" and claims["scope"] == "catalog:read"
    assert claims["exp"] == claims["iat"] + 60  # type: ignore[operator]


def test_with_no_scope_the_token_grants_every_scope(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", TEST_SECRET)
    assert main(["token"]) == 0
    assert decode(capsys.readouterr().out.strip())["scope"] == " ".join(KNOWN_SCOPES)


def test_embedded_mode_signs_with_the_secret_under_data_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["demo-token"]) == 0
    printed = capsys.readouterr().out
    token = printed.split("export TOKEN=", 1)[1].strip()
    assert decode(token, embedded_secret(tmp_path))["sub"] == "demo"


def test_with_a_database_and_no_secret_it_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/carpool")
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    assert main(["token"]) == 2
    assert "AUTH_JWT_SECRET" in capsys.readouterr().err
    assert main(["demo-token"]) == 0, "make run prints nothing outside embedded mode"
