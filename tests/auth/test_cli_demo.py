"""`make run` with an identity provider's key: no demo token, and a line saying why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

CARPOOL = Path(sys.executable).parent / "carpool"


def _public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.mark.parametrize(
    "variable", ["AUTH_JWT_PUBLIC_KEY", "AUTH_JWKS_URL"], ids=["public-key", "jwks"]
)
def test_demo_token_is_skipped_with_a_reason_when_tokens_come_from_a_provider(
    variable: str, tmp_path: Path
) -> None:
    value = _public_pem() if variable == "AUTH_JWT_PUBLIC_KEY" else "https://idp.test/jwks"
    env = {"PATH": "", "DATA_DIR": str(tmp_path), variable: value}
    done = subprocess.run(
        [str(CARPOOL), "demo-token"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "No demo token" in done.stdout and variable in done.stdout
    assert "Traceback" not in done.stderr
