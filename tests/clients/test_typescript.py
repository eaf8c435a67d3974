"""The browser client's TypeScript declarations type-check a page's use of it under
`tsc --strict` (make test installs TypeScript into .venv/node with npm)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TSC = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "tsc"
PROJECT = Path(__file__).resolve().parent / "typescript"


def _tsc() -> str:
    found = str(TSC) if TSC.exists() else shutil.which("tsc")
    if found is None:
        pytest.skip("TypeScript is not installed (make test installs it with npm)")
    return found


def test_the_declarations_type_check_a_page_using_every_feature() -> None:
    done = subprocess.run(
        [_tsc(), "-p", str(PROJECT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrongly_typed_use_is_refused(tmp_path: Path) -> None:
    declarations = ROOT / "clients" / "browser" / "carpool.d.ts"
    (tmp_path / "carpool.d.ts").write_text(declarations.read_text())
    (tmp_path / "wrong.ts").write_text(
        'import { connect } from "./carpool";\n'
        "export async function wrong(): Promise<number> {\n"
        "  const grommet = await connect().getGrommet({ grommet_id: 1 });\n"
        "  return grommet.name;\n"
        "}\n"
    )
    done = subprocess.run(
        [_tsc(), "--strict", "--noEmit", "--target", "es2022", "--module", "es2022",
         "--moduleResolution", "bundler", str(tmp_path / "wrong.ts")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "TS2322" in done.stdout, done.stdout
